import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (playwright's own browser download cannot work here), or CHROMIUM_PATH. */
export function chromiumPath(): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
    (path): path is string => !!path && existsSync(path),
  );
}

/**
 * Headless Chromium driven by playwright-core. Where no browser is installed the caller skips,
 * except under CI (which installs Debian's chromium), where a missing browser is a failure.
 */
export async function launchBrowser(): Promise<Browser | undefined> {
  const executablePath = chromiumPath();
  if (!executablePath) {
    if (process.env.CI) throw new Error('no chromium to drive: install Debian’s chromium package or set CHROMIUM_PATH');
    return undefined;
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox will not start.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** Screenshots go outside the checkout, never into git. */
export function screenshotPath(name: string): string {
  const dir = join(tmpdir(), 'payment-scheduler-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.png`);
}
