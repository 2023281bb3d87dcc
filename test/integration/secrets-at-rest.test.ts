import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { InstrumentStore } from '../../customers/instrument-store.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapAccount } from '../../api/auth/bootstrap-account.js';
import { startApiServer } from '../../app/server.js';
import { PaymentSchedulerClient, signHmac } from '../../client/payment-scheduler-client.js';
import { apiSettings, loadConfig } from '../../config.js';
import { openDatabase } from '../../db/orm.js';
import { SEALED_COLUMNS } from '../../db/sealed-columns.js';
import { SecretBox, type MasterKeys } from '../../db/secret-box.js';
import { createLogger } from '../../logger.js';
import { freshDatabase, type FreshDatabase } from '../support/fresh-database.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';
import { lane } from '../support/lanes.js';

const run = promisify(execFile);
const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

let system: TestSystem;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

/** Every row of every table, as text: pg_dump where the server is PostgreSQL, a query per table on the embedded database. */
async function dumpData(orm: MikroORM): Promise<string> {
  if (inject('databasePoolSize') !== 1) {
    const { stdout } = await run('pg_dump', ['--data-only', lane().databaseUrl], { maxBuffer: 512 * 1024 * 1024 });
    return stdout;
  }
  // pg_dump cannot talk to PGlite (another server version); every table is read row by row instead.
  const connection = orm.em.getConnection();
  const tables: { name: string }[] = await connection.execute(
    `select tablename as name from pg_tables where schemaname = 'public'`,
  );
  const parts: string[] = [];
  for (const { name } of tables) {
    const rows: { row: string }[] = await connection.execute(`select row_to_json(t)::text as row from "${name}" t`);
    parts.push(...rows.map((r) => r.row));
  }
  return parts.join('\n');
}

describe('a dump of the database', () => {
  it('holds no private key, however the key was created, nor an app credential or webhook secret', async () => {
    const tenant = await system.newTenant();
    const account = await system.newAccount();
    const idempotent = await account.client.request('POST', '/v1/account/keys', {
      body: { name: 'with a key', roles: ['account-admin'] },
      headers: { 'idempotency-key': randomUUID() },
    });
    const tenantKey = await tenant.account.request('POST', `/v1/account/tenants/${tenant.tenantId}/keys`, {
      body: { name: 'tenant key', roles: ['tenant-order-read'] },
      headers: { 'idempotency-key': randomUUID() },
    });
    system.issuedSecrets.push(idempotent.body.privateKey, tenantKey.body.privateKey);
    // An app's credentials and a webhook endpoint's signing secrets, the current one and the one it replaced.
    const appApiKey = newSandboxApiKey();
    const installed = await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_VOUCHERS/install', {
      body: { configuration: { apiKey: appApiKey } },
    });
    expect(installed.status).toBe(201);
    const endpoint = await tenant.client.request('POST', '/v1/webhooks/endpoints', {
      body: { url: 'http://127.0.0.1:9/hooks' },
    });
    expect(endpoint.status).toBe(201);
    const rotated = await tenant.client.request(
      'POST',
      `/v1/webhooks/endpoints/${endpoint.body.endpointId}/rotate-secret`,
      { body: { graceSeconds: 3600 } },
    );
    expect(rotated.status).toBe(200);
    // A provider's token for a card a customer saved, kept as the payment page keeps one.
    const token = `tok_${randomBytes(12).toString('hex')}`;
    const em = system.orm.em.fork();
    const store = new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys));
    const instrument = store.add(em, tenant.tenantId, 'SANDBOX_CARD', {
      token,
      paymentMethod: 'CARD',
      display: { brand: 'visa', last4: '4242' },
    });
    await em.flush();
    expect((await store.token(system.orm.em.fork(), tenant.tenantId, instrument.id))?.token).toBe(token);
    const tenantSecrets = [appApiKey, endpoint.body.secret, rotated.body.secret, token];

    const dump = await dumpData(system.orm);
    expect(dump).toContain(tenant.tenantId); // the dump did read the data
    expect(system.issuedSecrets.length).toBeGreaterThanOrEqual(5);
    for (const privateKey of system.issuedSecrets) {
      expect(dump).not.toContain(privateKey);
      // Nor the key in another spelling: the HMAC key bytes as hex.
      expect(dump).not.toContain(Buffer.from(privateKey, 'base64').toString('hex'));
    }
    for (const secret of tenantSecrets) {
      expect(secret).toMatch(/^(sk_test_|whsec_|tok_)/);
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(secret.replace(/^whsec_/, ''));
    }
  });

  it('lists every sealed column, so a rotation misses none', async () => {
    const columns: { table_name: string; column_name: string }[] = await system.orm.em
      .getConnection()
      .execute(
        `select table_name, column_name from information_schema.columns where table_schema = 'public' and column_name like '%ciphertext%'`,
      );
    expect(columns.map((c) => `${c.table_name}.${c.column_name}`).sort()).toEqual(
      SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).sort(),
    );
  });
});

describe('master key rotation', () => {
  let db: FreshDatabase;
  let orm: MikroORM;
  let temporal: Client;
  /** The master key every secret of this database is sealed under, as each test leaves it. */
  let currentKey = randomBytes(32).toString('base64');
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    db = await freshDatabase();
    orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
    temporal = new Client({ connection: Connection.lazy({ address: lane().temporalAddress }) });
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await orm?.close();
    await db?.drop();
  });

  async function api(masterKeys: MasterKeys) {
    const started = await startApiServer(
      {
        orm,
        temporal,
        logger: createLogger('rotation-api', 'silent'),
        masterKeys,
        settings: apiSettings(loadConfig({})),
        apps: new Map(),
      },
      0,
    );
    stops.push(() => started.close());
    return started;
  }

  async function rotate(env: Record<string, string>) {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/rotate-master-key.ts'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', DATABASE_URL: db.url, ...env },
    });
    return stdout;
  }

  async function sealedKeyIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const { table, column } of SEALED_COLUMNS) {
      const rows: { sealed: string }[] = await orm.em
        .getConnection()
        .execute(`select ${column} as sealed from ${table} where ${column} is not null`);
      ids.push(...rows.map((r) => r.sealed.split('.')[1]));
    }
    return ids;
  }

  const signIn = (url: string, publicKey: string, privateKey: string) =>
    fetch(`${url}/v1/identity/hmac`, {
      method: 'POST',
      headers: { authorization: signHmac(publicKey, privateKey) },
    }).then((r) => r.status);

  it('re-seals every secret under the new key; old tokens and a process holding only the old key fail closed', async () => {
    const keyA = currentKey;
    const keyB = randomBytes(32).toString('base64');
    const oldApi = await api({ current: keyA });
    const account = await bootstrapAccount(orm, { current: keyA });
    const client = new PaymentSchedulerClient({ baseUrl: oldApi.url, ...account });
    const oldToken = await client.accessToken();
    const idempotency = { 'idempotency-key': randomUUID() };
    const created = await client.request('POST', '/v1/account/keys', {
      body: { name: 'second', roles: ['account-admin'] },
      headers: idempotency,
    });
    expect(created.status).toBe(201);

    const output = await rotate({ MASTER_KEY: keyB, MASTER_KEY_PREVIOUS: keyA });
    expect(output).toMatch(/security_key 2, idempotency_record 1/);
    expect(new Set(await sealedKeyIds())).toEqual(new Set([SecretBox.fromMasterKeys({ current: keyB }).keyId]));

    const newApi = await api({ current: keyB });
    expect(await signIn(newApi.url, account.publicKey, account.privateKey)).toBe(201);
    expect(await signIn(newApi.url, created.body.publicKey, created.body.privateKey)).toBe(201);
    const withOldToken = await fetch(`${newApi.url}/v1/account/keys`, {
      headers: { authorization: `Bearer ${oldToken}`, 'x-account-id': account.accountId },
    });
    expect(withOldToken.status).toBe(401);
    const onNew = new PaymentSchedulerClient({ baseUrl: newApi.url, ...account });
    const replay = await onNew.request('POST', '/v1/account/keys', {
      body: { name: 'second', roles: ['account-admin'] },
      headers: idempotency,
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.privateKey).toBe(created.body.privateKey);

    // A process still holding only the old key cannot open the new secrets: it refuses, it does not crash.
    expect(await signIn(oldApi.url, account.publicKey, account.privateKey)).toBe(401);
    currentKey = keyB;
  });

  it('rotates the key file of a local run, dropping the old key once every secret is re-sealed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rotation-'));
    const keyFile = join(dataDir, 'master.key');
    const oldKey = currentKey;
    writeFileSync(keyFile, `${oldKey}\n`, { mode: 0o600 });
    const account = await bootstrapAccount(orm, { current: oldKey, previous: [] });

    await rotate({ DATA_DIR: dataDir });
    const lines = readFileSync(keyFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toBe(oldKey);
    const newApi = await api({ current: lines[0] });
    expect(await signIn(newApi.url, account.publicKey, account.privateKey)).toBe(201);
  });
});
