// `npm run rotate-master-key`: re-seals every secret at rest under the current master key.
//
// Deployments (MASTER_KEY set): first restart every process with MASTER_KEY=<new key> and
// MASTER_KEY_PREVIOUS=<old key>, then run this with the same environment, then drop
// MASTER_KEY_PREVIOUS. Local runs (the key file of `npm start`, which must be stopped): this makes a
// new key itself, keeps the old one in the file until every secret is re-sealed, then drops it.
// Either way access tokens signed under the old key stop working (holders sign in again), and a
// secret left under a key no process holds fails to open: it is refused, never read as garbage.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { embeddedDatabaseUrl } from '../db/embedded-database.js';
import { loadOrCreateMasterKeyFile, writeMasterKeyFile } from '../db/master-key-file.js';
import { openDatabase } from '../db/orm.js';
import { resealAll } from '../db/sealed-columns.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';

const config = loadConfig();
const url = config.databaseUrl ?? embeddedDatabaseUrl(config.embeddedDbPort, join(config.dataDir, 'pglite'));
let keys: MasterKeys;
let keyFile: string | undefined;
if (config.masterKey) {
  keys = { current: config.masterKey, previous: config.masterKeyPrevious };
} else {
  keyFile = join(config.dataDir, 'master.key');
  const old = loadOrCreateMasterKeyFile(keyFile);
  keys = { current: randomBytes(32).toString('base64'), previous: [old.current, ...(old.previous ?? [])] };
  // The new key goes in first, with the old ones behind it: a crash from here on leaves a file that opens everything.
  writeMasterKeyFile(keyFile, keys);
}

const orm = await openDatabase({ url, poolSize: 1 });
try {
  const box = SecretBox.fromMasterKeys(keys);
  const counts = await resealAll(orm.em.fork(), box);
  if (keyFile) writeMasterKeyFile(keyFile, { current: keys.current });
  console.log(
    `re-sealed under master key ${box.keyId}: ${Object.entries(counts)
      .map(([table, n]) => `${table} ${n}`)
      .join(', ')}`,
  );
  console.log(
    keyFile
      ? `${keyFile} now holds the new key alone.`
      : 'Every secret is under MASTER_KEY now: remove MASTER_KEY_PREVIOUS.',
  );
} finally {
  await orm.close();
}
