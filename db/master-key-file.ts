import { randomBytes, randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MasterKeys } from './secret-box.js';

/**
 * For local runs only: master keys kept in a file beside the embedded database, readable by its
 * owner alone. The first line is the current key; any further lines are previous keys, kept while
 * `npm run rotate-master-key` re-seals secrets. Deployments set MASTER_KEY instead.
 */
export function loadOrCreateMasterKeyFile(path: string): MasterKeys {
  const existing = readKeys(path);
  if (existing) return existing;
  mkdirSync(dirname(path), { recursive: true });
  // Written whole under a temporary name, then linked into place: link() fails if the file exists,
  // so of two processes starting together exactly one key wins and both use it.
  const temporary = join(dirname(path), `.master.key.${randomUUID()}`);
  writeFileSync(temporary, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(temporary, { force: true });
  }
  return readKeys(path) as MasterKeys;
}

/** Replaces the file's keys at once (write, then rename), so a crash leaves the old or the new file, never half of one. */
export function writeMasterKeyFile(path: string, keys: MasterKeys): void {
  const temporary = join(dirname(path), `.master.key.${randomUUID()}`);
  writeFileSync(temporary, `${[keys.current, ...(keys.previous ?? [])].join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, path);
}

function readKeys(path: string): MasterKeys | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const [current, ...previous] = text.split('\n').map((line) => line.trim()).filter(Boolean);
  if (!current) throw new Error(`${path} holds no master key`);
  return { current, previous };
}
