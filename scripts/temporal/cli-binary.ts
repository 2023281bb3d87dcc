import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EphemeralServerExecutable } from '@temporalio/testing';
import type { Config } from '../../config.js';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/**
 * Finds the Temporal CLI (which carries the dev server), building it from the Go module proxy into
 * the cache when needed. Order: TEMPORAL_CLI_PATH, a `temporal` on PATH, the cache, a Go build, and
 * last the SDK's own download, which needs the internet.
 */
export function ensureTemporalCli(
  { cacheDir, temporalCliPath }: Pick<Config, 'cacheDir' | 'temporalCliPath'>,
  log: (line: string) => void = console.error,
): EphemeralServerExecutable {
  if (temporalCliPath) {
    if (!existsSync(temporalCliPath)) throw new Error(`TEMPORAL_CLI_PATH=${temporalCliPath} does not exist`);
    return { type: 'existing-path', path: temporalCliPath };
  }
  const onPath = which('temporal');
  if (onPath) return { type: 'existing-path', path: onPath };

  const binDir = join(cacheDir, 'bin');
  const cached = join(binDir, 'temporal');
  if (existsSync(cached)) return { type: 'existing-path', path: cached };

  if (which('go')) {
    mkdirSync(binDir, { recursive: true });
    log(
      `Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${binDir} (first run only; takes a few minutes)...`,
    );
    const started = Date.now();
    const result = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, CGO_ENABLED: '0', GOBIN: binDir },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (result.status !== 0 || !existsSync(cached)) {
      throw new Error(`go install of the Temporal CLI failed (exit ${result.status ?? result.signal})`);
    }
    log(`Built the Temporal CLI in ${((Date.now() - started) / 1000).toFixed(0)} s: ${cached}`);
    return { type: 'existing-path', path: cached };
  }

  log(
    'No Temporal CLI and no Go toolchain: falling back to the Temporal SDK download (needs the internet). ' +
      'Without it, install Go (the CLI is then built automatically), or put the `temporal` CLI on PATH or in TEMPORAL_CLI_PATH.',
  );
  return { type: 'cached-download', downloadDir: join(cacheDir, 'download') };
}

function which(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
