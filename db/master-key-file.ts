import { randomBytes, randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readOrCreateSecretFile } from './create-once-file.js';
import type { MasterKeys } from './secret-box.js';

/**
 * For local runs only: master keys kept in a file beside the embedded database, readable by its
 * owner alone. The first line is the current key; any further lines are previous keys, kept while
 * `npm run rotate-master-key` re-seals secrets. Deployments set MASTER_KEY instead.
 */
export function loadOrCreateMasterKeyFile(path: string): MasterKeys {
  const [current, ...previous] = readOrCreateSecretFile(path, () => randomBytes(32).toString('base64'))
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (!current) throw new Error(`${path} holds no master key`);
  return { current, previous };
}

/** Replaces the file's keys at once (write, then rename), so a crash leaves the old or the new file, never half of one. */
export function writeMasterKeyFile(path: string, keys: MasterKeys): void {
  const temporary = join(dirname(path), `.master.key.${randomUUID()}`);
  writeFileSync(temporary, `${[keys.current, ...(keys.previous ?? [])].join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, path);
}
