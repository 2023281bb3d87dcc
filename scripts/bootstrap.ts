// `npm run bootstrap [-- --json] [-- --name "Acme"]`: creates an account and its account-admin key
// and prints them once. Uses DATABASE_URL and MASTER_KEY, or, when unset, the embedded database and
// master key file of `npm start` (which must be running).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { bootstrapAccount } from '../api/auth/bootstrap-account.js';
import { embeddedDatabaseUrl } from '../db/embedded-database.js';
import { loadOrCreateMasterKeyFile } from '../db/master-key-file.js';
import { openDatabase } from '../db/orm.js';

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, name: { type: 'string' } } });
const config = loadConfig();
const url = config.databaseUrl ?? embeddedDatabaseUrl(config.embeddedDbPort, join(config.dataDir, 'pglite'));
const masterKeys = config.masterKey
  ? { current: config.masterKey, previous: config.masterKeyPrevious }
  : loadOrCreateMasterKeyFile(join(config.dataDir, 'master.key'));
const orm = await openDatabase({ url, poolSize: 1, migrate: true });
try {
  const created = await bootstrapAccount(orm, masterKeys, values.name);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(created)}\n`);
  } else {
    console.log(`Account ${created.accountId}
  public key  ${created.publicKey}
  private key ${created.privateKey}
The private key is shown this once. Exchange the pair for a token with POST /v1/identity/hmac (see README).`);
  }
} finally {
  await orm.close();
}
