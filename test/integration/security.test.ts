import { createHash, createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { issueAccessToken, tokenSigningKey } from '../../api/auth/access-token.js';
import { PaymentSchedulerClient, signHmac } from '../../client/payment-scheduler-client.js';
import { Customer, SecurityKey } from '../../db/entities/index.js';
import { SecretBox } from '../../db/secret-box.js';
import { InstrumentStore } from '../../customers/instrument-store.js';
import { ACCOUNT_ROLES, grants, TENANT_ROLES, type Role } from '../../domain/roles.js';
import { insertInstructionRows } from '../support/instruction-rows.js';
import { eventually } from '../support/eventually.js';
import { freshDatabase } from '../support/fresh-database.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import type { RunningApi } from '../../app/server.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

let system: TestSystem;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
/** Every private key this file sees; none may appear in any log line. */
const privateKeys: string[] = [];

beforeAll(async () => {
  system = await startSystem();
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await system?.close();
});

async function tenantFixture(roles?: string[]): Promise<TenantFixture> {
  const fixture = await system.newTenant({ roles });
  privateKeys.push(fixture.privateKey);
  return fixture;
}

async function exchange(authorization: string | undefined, body?: string, baseUrl = system.api.url) {
  const res = await fetch(`${baseUrl}/v1/identity/hmac`, {
    method: 'POST',
    headers: { ...(authorization ? { authorization } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body,
  });
  return { status: res.status, contentType: res.headers.get('content-type'), body: (await res.json()) as any };
}

async function bearer(token: string, path: string, headers: Record<string, string> = {}, baseUrl = system.api.url) {
  const res = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
  return { status: res.status, body: (await res.json()) as any };
}

describe('the HMAC signing algorithm', () => {
  // The README's worked example. The expected values are computed here from the written-out
  // algorithm with node:crypto, independently of the code under test.
  const example = {
    publicKey: '2f6a8a5e-6e0f-4c3e-9d2b-3b1e2c4d5f60',
    privateKey: 'c2VjcmV0LWtleS1mb3ItdGhlLXdvcmtlZC1leGFtcGxl',
    nonce: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d',
    epochSeconds: 1798761600,
    body: '{"name":"Acme"}',
  };

  it('matches the worked example computed from the specification', () => {
    const bodyHash = createHash('sha256').update(example.body).digest('base64');
    const message = `${example.publicKey}:${example.nonce}:${example.epochSeconds}:${bodyHash}`;
    const signature = createHmac('sha256', Buffer.from(example.privateKey, 'base64')).update(message).digest('base64');
    const header = signHmac(
      example.publicKey,
      example.privateKey,
      example.body,
      example.epochSeconds * 1000,
      example.nonce,
    );
    expect(header).toBe(`Hmac ${example.publicKey}:${example.nonce}:${example.epochSeconds}:${signature}`);

    // The README shows the same numbers, so a reader can check their own implementation.
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(bodyHash);
    expect(readme).toContain(signature);
  });

  it('hashes an empty body as the empty string', () => {
    const message = `${example.publicKey}:${example.nonce}:${example.epochSeconds}:`;
    const signature = createHmac('sha256', Buffer.from(example.privateKey, 'base64')).update(message).digest('base64');
    expect(signHmac(example.publicKey, example.privateKey, '', example.epochSeconds * 1000, example.nonce)).toBe(
      `Hmac ${example.publicKey}:${example.nonce}:${example.epochSeconds}:${signature}`,
    );
  });
});

describe('POST /v1/identity/hmac', () => {
  it('exchanges a correctly signed request for a short-lived token that opens the API', async () => {
    const tenant = await tenantFixture();
    const res = await exchange(signHmac(tenant.publicKey, tenant.privateKey));
    expect(res.status).toBe(201);
    expect(res.body.expires).toBeGreaterThan(Date.now() + 10 * 60_000);
    expect(res.body.expires).toBeLessThanOrEqual(Date.now() + 15 * 60_000 + 1000);
    const list = await bearer(res.body.accessToken, '/v1/order-management', { 'x-tenant-id': tenant.tenantId });
    expect(list).toMatchObject({ status: 200, body: { items: [] } });
  });

  it('signs the body as sent: a tampered body is refused', async () => {
    const tenant = await tenantFixture();
    const header = signHmac(tenant.publicKey, tenant.privateKey, '{"a":1}');
    expect((await exchange(header, '{"a":2}')).body.code).toBe('invalid_signature');
    expect((await exchange(signHmac(tenant.publicKey, tenant.privateKey, '{"a":1}'), '{"a":1}')).status).toBe(201);
  });

  it('refuses a timestamp more than 5 minutes off, either way', async () => {
    const tenant = await tenantFixture();
    // The clock held still (the API runs in this process), so the server reads the very instant the
    // request was signed at: a second spent sending on a busy machine must not bring 301 s within 300.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      for (const offsetMs of [-301_000, 301_000]) {
        const res = await exchange(signHmac(tenant.publicKey, tenant.privateKey, '', Date.now() + offsetMs));
        expect(res).toMatchObject({ status: 401, body: { code: 'stale_request' } });
      }
    } finally {
      vi.useRealTimers();
    }
    expect((await exchange(signHmac(tenant.publicKey, tenant.privateKey, '', Date.now() - 240_000))).status).toBe(201);
  });

  it('refuses a reused nonce, also at a second API process', async () => {
    const tenant = await tenantFixture();
    const header = signHmac(tenant.publicKey, tenant.privateKey);
    expect((await exchange(header)).status).toBe(201);
    expect(await exchange(header)).toMatchObject({ status: 401, body: { code: 'nonce_reused' } });

    const second = await system.startApi();
    try {
      const replayElsewhere = signHmac(tenant.publicKey, tenant.privateKey);
      expect((await exchange(replayElsewhere, undefined, second.url)).status).toBe(201);
      expect(await exchange(replayElsewhere)).toMatchObject({ status: 401, body: { code: 'nonce_reused' } });
    } finally {
      await second.close();
    }
  });

  it('keeps a nonce, by the database’s clock, past the time its timestamp could still be accepted, with a margin for clocks apart', async () => {
    const tenant = await tenantFixture();
    // Signed by a clock nearly 5 minutes fast: its timestamp is good for nearly 10 minutes more.
    expect((await exchange(signHmac(tenant.publicKey, tenant.privateKey, '', Date.now() + 299_000))).status).toBe(201);
    const [kept] = await system.orm.em
      .fork()
      .getConnection()
      .execute<{ left: number }[]>(
        `select extract(epoch from expires_at - now())::float as left from used_nonce where public_key = ?`,
        [tenant.publicKey],
      );
    expect(kept.left).toBeGreaterThan(14 * 60);
  });

  it('refuses a wrong signature and an unknown key alike', async () => {
    const tenant = await tenantFixture();
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    const wrong = await exchange(signHmac(tenant.publicKey, wrongKey));
    const unknown = await exchange(signHmac(randomUUID(), tenant.privateKey));
    expect(wrong).toMatchObject({ status: 401, body: { code: 'invalid_signature' } });
    expect(unknown).toMatchObject({ status: 401, body: { code: 'invalid_signature' } });
    expect(wrong.contentType).toMatch(/^application\/problem\+json/);
    expect(await exchange('Hmac nonsense')).toMatchObject({
      status: 401,
      body: { code: 'invalid_authorization_header' },
    });
    expect(await exchange(undefined)).toMatchObject({ status: 401, body: { code: 'invalid_authorization_header' } });
  });

  it('refuses a deleted key at once, including tokens issued before the delete', async () => {
    const tenant = await tenantFixture();
    const token = await tenant.client.accessToken();
    const scope = { 'x-tenant-id': tenant.tenantId };
    expect((await bearer(token, '/v1/order-management', scope)).status).toBe(200);

    const deleted = await tenant.account.request(
      'DELETE',
      `/v1/account/tenants/${tenant.tenantId}/keys/${tenant.publicKey}`,
    );
    expect(deleted.status).toBe(204);
    expect(await bearer(token, '/v1/order-management', scope)).toMatchObject({
      status: 401,
      body: { code: 'unauthenticated' },
    });
    expect((await exchange(signHmac(tenant.publicKey, tenant.privateKey))).status).toBe(401);
  });

  // An embedded PGlite serves one session at a time: no API listens there, none caches keys.
  it.skipIf(inject('databasePoolSize') === 1)(
    'refuses a deleted key in every API process, however it was deleted',
    async () => {
      // Both processes keep the keys they read only while they hear changes: started once they do.
      const second = await system.startListeningApi();
      try {
        const usable = async (token: string, tenantId: string) =>
          Promise.all(
            [system.api.url, second.url].map(
              async (url) => (await bearer(token, '/v1/order-management', { 'x-tenant-id': tenantId }, url)).status,
            ),
          );
        const refusedEverywhere = (statuses: number[]) => statuses.every((status) => status === 401);

        // Through the first API: the second hears of it from PostgreSQL.
        const tenant = await tenantFixture();
        const token = await tenant.client.accessToken();
        expect(await usable(token, tenant.tenantId)).toEqual([200, 200]);
        const deleted = await tenant.account.request(
          'DELETE',
          `/v1/account/tenants/${tenant.tenantId}/keys/${tenant.publicKey}`,
        );
        expect(deleted.status).toBe(204);
        // At once where it was deleted; in the other process within the notice's delivery.
        expect((await bearer(token, '/v1/order-management', { 'x-tenant-id': tenant.tenantId })).status).toBe(401);
        await eventually(() => usable(token, tenant.tenantId), refusedEverywhere, {
          what: 'the key refused by both APIs',
          timeoutMs: 5_000,
          intervalMs: 20,
        });

        // Straight in the database, by no API at all.
        const other = await tenantFixture();
        const otherToken = await other.client.accessToken();
        expect(await usable(otherToken, other.tenantId)).toEqual([200, 200]);
        await system.orm.em.fork().nativeDelete(SecurityKey, { publicKey: other.publicKey });
        await eventually(() => usable(otherToken, other.tenantId), refusedEverywhere, {
          what: 'the key refused by both APIs',
          timeoutMs: 5_000,
          intervalMs: 20,
        });
      } finally {
        await second.close();
      }
    },
  );

  it.skipIf(inject('databasePoolSize') === 1)(
    'refuses a deleted key at once in the API that deleted it, before any notice could reach it',
    async () => {
      // Two APIs listening for row changes on another database: they keep the keys they read, and
      // hear nothing of this one's changes. Only the deleting process's own forgetting can refuse at once.
      const elsewhere = await freshDatabase();
      const [deleting, other] = await Promise.all([1, 2].map(() => system.startApi({ rowChangesUrl: elsewhere.url })));
      try {
        await eventually(() => deleting.hearsRowChanges() && other.hearsRowChanges(), Boolean, {
          what: 'both APIs listening',
        });
        const tenant = await tenantFixture();
        const token = await tenant.client.accessToken();
        const scope = { 'x-tenant-id': tenant.tenantId };
        const status = async (api: RunningApi) => (await bearer(token, '/v1/order-management', scope, api.url)).status;
        expect([await status(deleting), await status(other)]).toEqual([200, 200]);

        const deleted = await fetch(`${deleting.url}/v1/account/tenants/${tenant.tenantId}/keys/${tenant.publicKey}`, {
          method: 'DELETE',
          headers: {
            authorization: `Bearer ${await tenant.account.accessToken()}`,
            'x-account-id': tenant.accountId,
          },
        });
        expect(deleted.status).toBe(204);
        expect(await status(deleting)).toBe(401);
        // Still listening, so still keeping rows: not refused because its cache was off.
        expect(deleting.hearsRowChanges()).toBe(true);
        // The other still holds the key as it read it (for up to a minute): what the deleting one
        // would do without forgetting it.
        expect(await status(other)).toBe(200);
      } finally {
        await Promise.all([deleting.close(), other.close()]);
        await elsewhere.drop();
      }
    },
  );
});

describe('bearer authentication', () => {
  it('answers 401 in the one error format for missing, malformed, forged and expired tokens', async () => {
    const tenant = await tenantFixture();
    const scope = { 'x-tenant-id': tenant.tenantId };
    const missing = await fetch(`${system.api.url}/v1/order-management`, { headers: scope });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(await missing.json()).toMatchObject({ status: 401, code: 'unauthenticated' });

    expect((await bearer('not-a-token', '/v1/order-management', scope)).status).toBe(401);
    const forged = await issueAccessToken(new Uint8Array(32).fill(1), tenant.publicKey, 600);
    expect((await bearer(forged.accessToken, '/v1/order-management', scope)).status).toBe(401);
    const expired = await issueAccessToken(tokenSigningKey(system.masterKey), tenant.publicKey, -60);
    expect((await bearer(expired.accessToken, '/v1/order-management', scope)).status).toBe(401);
    const valid = await issueAccessToken(tokenSigningKey(system.masterKey), tenant.publicKey, 60);
    expect((await bearer(valid.accessToken, '/v1/order-management', scope)).status).toBe(200);
  });

  it('needs the scope header, and treats another tenant or account as not found', async () => {
    const a = await tenantFixture();
    const b = await tenantFixture();
    const token = await b.client.accessToken();
    expect(await bearer(token, '/v1/order-management')).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'headers.x-tenant-id' }] },
    });
    expect(await bearer(token, '/v1/order-management', { 'x-tenant-id': a.tenantId })).toMatchObject({
      status: 404,
      body: { code: 'tenant_not_found' },
    });
    const accountToken = await b.account.accessToken();
    expect(await bearer(accountToken, '/v1/account/tenants', { 'x-account-id': a.accountId })).toMatchObject({
      status: 404,
      body: { code: 'account_not_found' },
    });
  });
});

describe('roles', () => {
  const routes = () => system.api.routes;

  /** A concrete URL for a route template, aimed at objects of `fixture`. */
  function urlFor(path: string, fixture: TenantFixture): string {
    return `/v1${path}`
      .replace(':tenantId', fixture.tenantId)
      .replace(':publicKey', randomUUID())
      .replace(':orderRef', 'no-such-order')
      .replace(':appId', 'SANDBOX_VOUCHERS')
      .replace(':schemeId', randomUUID())
      .replace(':voucherGroupId', randomUUID())
      .replace(':endpointId', randomUUID())
      .replace(':deliveryId', randomUUID());
  }

  it('lets in exactly the keys holding a role each route declares', async () => {
    const fixture = await tenantFixture();
    const clients = new Map<Role, PaymentSchedulerClient>();
    for (const role of ACCOUNT_ROLES) {
      const key = await fixture.account.request('POST', '/v1/account/keys', { body: { name: role, roles: [role] } });
      privateKeys.push(key.body.privateKey);
      clients.set(
        role,
        new PaymentSchedulerClient({ baseUrl: system.api.url, ...key.body, accountId: fixture.accountId }),
      );
    }
    for (const role of TENANT_ROLES) {
      const key = await fixture.account.request('POST', `/v1/account/tenants/${fixture.tenantId}/keys`, {
        body: { name: role, roles: [role] },
      });
      privateKeys.push(key.body.privateKey);
      clients.set(
        role,
        new PaymentSchedulerClient({ baseUrl: system.api.url, ...key.body, tenantId: fixture.tenantId }),
      );
    }

    const outcomes: string[] = [];
    for (const route of routes().filter((r) => r.scope !== 'public')) {
      for (const [role, client] of clients) {
        const keyScope = role.startsWith('account-') ? 'account' : 'tenant';
        const allowed = keyScope === route.scope && route.roles.some((required) => grants([role], required as Role));
        const res = await client.request(route.method.toUpperCase(), urlFor(route.path, fixture), {
          body: route.method === 'get' || route.method === 'delete' ? undefined : {},
        });
        const denied = res.status === 403;
        outcomes.push(`${route.method.toUpperCase()} ${route.path} as ${role}: ${allowed ? 'allowed' : 'denied'}`);
        expect(res.status, `${route.method} ${route.path} as ${role}`).not.toBe(401);
        expect(denied, `${route.method} ${route.path} as ${role} (got ${res.status} ${res.body?.code})`).toBe(!allowed);
      }
    }
    // Spot checks written out by hand, so the matrix is not only checked against itself.
    expect(outcomes).toEqual(
      expect.arrayContaining([
        'POST /order-management as tenant-order-read: denied',
        'POST /order-management as tenant-order-write: allowed',
        'GET /order-management as tenant-order-write: allowed',
        'GET /order-management as tenant-app-read: denied',
        'GET /order-management as tenant-admin: allowed',
        'GET /order-management as account-admin: denied',
        'POST /account/tenants as account-tenant-read: denied',
        'GET /account/tenants as account-tenant-read: allowed',
        'POST /account/keys as account-tenant-write: denied',
        'GET /account/audit as account-admin: allowed',
        'GET /account/audit as tenant-admin: denied',
      ]),
    );
  });
});

describe('account keys', () => {
  it('keeps the account’s last account-admin key: deleting it is a 409, deleting one of two is not', async () => {
    const account = await system.newAccount();
    const second = await account.client.request('POST', '/v1/account/keys', {
      body: { name: 'second admin', roles: ['account-admin'] },
    });
    expect(second.status).toBe(201);
    system.issuedSecrets.push(second.body.privateKey);
    const secondClient = new PaymentSchedulerClient({
      baseUrl: system.api.url,
      ...second.body,
      accountId: account.accountId,
    });
    // One of two goes (the bootstrap key, by the second); the second, now the last, stays.
    expect((await secondClient.request('DELETE', `/v1/account/keys/${account.publicKey}`)).status).toBe(204);
    const last = await secondClient.request('DELETE', `/v1/account/keys/${second.body.publicKey}`);
    expect(last).toMatchObject({ status: 409, body: { code: 'last_admin_key' } });
    expect(await system.orm.em.fork().count(SecurityKey, { accountId: account.accountId, tenantId: null })).toBe(1);
    // A key of another role is not an admin: the last admin key still stays when one of those is made.
    const reader = await secondClient.request('POST', '/v1/account/keys', {
      body: { name: 'reader', roles: ['account-tenant-read'] },
    });
    system.issuedSecrets.push(reader.body.privateKey);
    expect((await secondClient.request('DELETE', `/v1/account/keys/${second.body.publicKey}`)).status).toBe(409);
    expect((await secondClient.request('DELETE', `/v1/account/keys/${reader.body.publicKey}`)).status).toBe(204);
  });
});

describe('tenant isolation', () => {
  type Check = (a: TenantFixture, b: TenantFixture) => Promise<void>;
  const notFound = async (res: Promise<{ status: number; body: any }>) => {
    const { status, body } = await res;
    expect(status, JSON.stringify(body)).toBe(404);
  };

  /**
   * Every non-public route, walked as tenant or account B against A's objects. A route added
   * without an entry here fails the completeness check below.
   */
  const ISOLATION: Record<string, Check> = {
    'POST /order-management': async (a, b) => {
      // Same orderRef, other tenant: a separate order; A's is untouched.
      const res = await b.client.request('POST', '/v1/order-management', {
        body: orderBody('iso-order', 'b-instruction'),
      });
      expect(res.status).toBe(202);
      const mine = await a.client.request('GET', '/v1/order-management/iso-order');
      expect(mine.body.instructions.map((i: any) => i.instructionRef)).toEqual(['a-instruction']);
    },
    'POST /order-management/batch': async (a, b) => {
      // A's orderRef in B's batch: a new order of B's (202, not "already taken"); A's is untouched.
      const own = await a.client.request('POST', '/v1/order-management', { body: orderBody('iso-batch', 'a-batch') });
      expect(own.status).toBe(202);
      const res = await b.client.request('POST', '/v1/order-management/batch', {
        body: { orders: [orderBody('iso-batch', 'b-batch')] },
      });
      expect(res.body.results[0]).toMatchObject({ status: 202 });
      expect(res.body.results[0].orderId).not.toBe(own.body.orderId);
      const mine = await a.client.request('GET', '/v1/order-management/iso-batch');
      expect(mine.body.instructions.map((i: any) => i.instructionRef)).toEqual(['a-batch']);
    },
    'GET /order-management': async (_a, b) => {
      const res = await b.client.request('GET', '/v1/order-management');
      expect(res.body.items.map((o: any) => o.orderRef)).not.toContain('iso-order-only-a');
    },
    'GET /order-management/:orderRef': (_a, b) =>
      notFound(b.client.request('GET', '/v1/order-management/iso-order-only-a')),
    'GET /instructions': async (a, b) => {
      const search = async (t: TenantFixture) =>
        (await t.client.request('GET', '/v1/instructions?limit=100')).body.items.map((i: any) => i.orderRef);
      expect(await search(a)).toContain('iso-order-only-a');
      expect(await search(b)).not.toContain('iso-order-only-a');
    },
    // A's run first (made by the first check), then B at it by its id.
    'POST /reconciliation/runs': async (a, b) => {
      const period = { appId: 'SANDBOX_CARD', from: '2030-04-01T00:00:00Z', to: '2030-05-01T00:00:00Z' };
      const mine = await a.client.request('POST', '/v1/reconciliation/runs', { body: period });
      expect(mine.status).toBe(201);
      aObjects.runId = mine.body.runId;
      const theirs = await b.client.request('POST', '/v1/reconciliation/runs', { body: period });
      expect(theirs.body.runId).not.toBe(aObjects.runId);
      const listed = await a.client.request('GET', '/v1/reconciliation/runs');
      expect(listed.body.items.map((r: any) => r.runId)).not.toContain(theirs.body.runId);
    },
    'GET /reconciliation/runs': async (_a, b) => {
      const res = await b.client.request('GET', '/v1/reconciliation/runs');
      expect(res.body.items.map((r: any) => r.runId)).not.toContain(aObjects.runId);
    },
    'GET /reconciliation/runs/:runId': (_a, b) =>
      notFound(b.client.request('GET', `/v1/reconciliation/runs/${aObjects.runId}`)),
    'GET /reconciliation/runs/:runId/items': (_a, b) =>
      notFound(b.client.request('GET', `/v1/reconciliation/runs/${aObjects.runId}/items`)),
    'GET /exports/settlements': async (a, b) => {
      // A settlement of A's, in the period both ask for.
      await insertInstructionRows(system.orm, {
        tenantId: a.tenantId,
        prefix: 'iso-settled-',
        count: 1,
        status: 'SETTLED',
        dueAt: `'2030-05-01T00:00:00Z'::timestamptz`,
        settledAt: `'2030-05-01T00:00:00Z'::timestamptz`,
      });
      const exported = async (t: TenantFixture) =>
        (
          await t.client.send('GET', '/v1/exports/settlements?from=2030-04-01T00:00:00Z&to=2030-06-01T00:00:00Z')
        ).text();
      expect(await exported(a)).toContain('iso-settled-1');
      expect(await exported(b)).not.toContain('iso-settled-1');
    },
    // Changes to A's order, attempted by B, reach nothing; A's order is unchanged afterwards (checked last).
    'POST /order-management/:orderRef/cancel': (_a, b) =>
      notFound(b.client.request('POST', '/v1/order-management/iso-order-only-a/cancel')),
    'POST /order-management/:orderRef/instructions': (_a, b) =>
      notFound(
        b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions', {
          body: orderBody('x', 'added').instructions[0],
        }),
      ),
    'PATCH /order-management/:orderRef/instructions/:instructionRef': (_a, b) =>
      notFound(
        b.client.request('PATCH', '/v1/order-management/iso-order-only-a/instructions/x', { body: { amount: '2.00' } }),
      ),
    'POST /order-management/:orderRef/instructions/:instructionRef/cancel': (_a, b) =>
      notFound(b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/cancel')),
    'GET /order-management/:orderRef/instructions/:instructionRef/options': (_a, b) =>
      notFound(b.client.request('GET', '/v1/order-management/iso-order-only-a/instructions/x/options')),
    'POST /order-management/:orderRef/instructions/:instructionRef/payment-link': (_a, b) =>
      notFound(
        b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/payment-link', { body: {} }),
      ),
    'POST /order-management/:orderRef/instructions/:instructionRef/resolve': (_a, b) =>
      notFound(
        b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/resolve', {
          body: { outcome: 'NOT_PAID', note: 'not mine' },
        }),
      ),
    'DELETE /order-management/:orderRef/instructions/:instructionRef/payment-link': (_a, b) =>
      notFound(b.client.request('DELETE', '/v1/order-management/iso-order-only-a/instructions/x/payment-link')),
    'POST /order-management/:orderRef/instructions/:instructionRef/refunds': (_a, b) =>
      notFound(
        b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/refunds', {
          body: { amount: '1.00' },
          headers: { 'idempotency-key': 'iso-refund' },
        }),
      ),
    'POST /order-management/:orderRef/instructions/:instructionRef/refunds/:refundId/resolve': (_a, b) =>
      notFound(
        b.client.request(
          'POST',
          '/v1/order-management/iso-order-only-a/instructions/x/refunds/7f1c1c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f/resolve',
          { body: { outcome: 'FAILED', note: 'not mine' } },
        ),
      ),
    'GET /order-management/:orderRef/instructions/:instructionRef/refunds': (_a, b) =>
      notFound(b.client.request('GET', '/v1/order-management/iso-order-only-a/instructions/x/refunds')),
    'POST /order-management/:orderRef/instructions/:instructionRef/retry': (_a, b) =>
      notFound(b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/retry', { body: {} })),
    'POST /order-management/:orderRef/instructions/:instructionRef/pay': (_a, b) =>
      notFound(
        b.client.request('POST', '/v1/order-management/iso-order-only-a/instructions/x/pay', {
          body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
        }),
      ),
    'POST /customers': async (a, b) => {
      // Same customerRef, other tenant: a customer of its own; A's is untouched.
      expect((await b.client.request('POST', '/v1/customers', { body: { customerRef: 'iso-customer' } })).status).toBe(
        201,
      );
      expect((await a.client.request('GET', '/v1/customers/iso-customer')).body.name).toBe('A’s customer');
    },
    'GET /customers': async (_a, b) => {
      const res = await b.client.request('GET', '/v1/customers');
      expect(res.body.items.map((c: any) => c.customerRef)).not.toContain('iso-customer-only-a');
    },
    'GET /customers/:customerRef': (_a, b) => notFound(b.client.request('GET', '/v1/customers/iso-customer-only-a')),
    'PATCH /customers/:customerRef': async (a, b) => {
      await notFound(b.client.request('PATCH', '/v1/customers/iso-customer-only-a', { body: { name: 'stolen' } }));
      expect((await a.client.request('GET', '/v1/customers/iso-customer-only-a')).body.name).toBe('A’s customer');
    },
    'GET /customers/:customerRef/instruments': (_a, b) =>
      notFound(b.client.request('GET', '/v1/customers/iso-customer-only-a/instruments')),
    'DELETE /customers/:customerRef/instruments/:instrumentId': async (a, b) => {
      await notFound(
        b.client.request('DELETE', `/v1/customers/iso-customer-only-a/instruments/${aObjects.instrumentId}`),
      );
      // Named under B's own customer of the same ref, A's instrument is still not B's.
      await notFound(b.client.request('DELETE', `/v1/customers/iso-customer/instruments/${aObjects.instrumentId}`));
      const instruments = await a.client.request('GET', '/v1/customers/iso-customer-only-a/instruments');
      expect(instruments.body.items.map((i: any) => i.instrumentId)).toEqual([aObjects.instrumentId]);
    },
    'DELETE /customers/:customerRef': async (a, b) => {
      await notFound(b.client.request('DELETE', '/v1/customers/iso-customer-only-a'));
      expect((await a.client.request('GET', '/v1/customers/iso-customer-only-a')).status).toBe(200);
    },
    'POST /account/tenants': async (a, b) => {
      const before = await a.account.request('GET', '/v1/account/tenants');
      expect((await b.account.request('POST', '/v1/account/tenants', { body: { name: 'b2' } })).status).toBe(201);
      const after = await a.account.request('GET', '/v1/account/tenants');
      expect(after.body.items).toEqual(before.body.items);
    },
    'GET /account/tenants': async (a, b) => {
      const res = await b.account.request('GET', '/v1/account/tenants');
      expect(res.body.items.map((t: any) => t.tenantId)).not.toContain(a.tenantId);
    },
    'GET /account/tenants/:tenantId': (a, b) => notFound(b.account.request('GET', `/v1/account/tenants/${a.tenantId}`)),
    'PATCH /account/tenants/:tenantId': async (a, b) => {
      await notFound(b.account.request('PATCH', `/v1/account/tenants/${a.tenantId}`, { body: { name: 'stolen' } }));
      expect((await a.account.request('GET', `/v1/account/tenants/${a.tenantId}`)).body.name).toBe('test tenant');
    },
    'POST /account/keys': async (a, b) => {
      const before = await a.account.request('GET', '/v1/account/keys');
      const created = await b.account.request('POST', '/v1/account/keys', {
        body: { name: 'b', roles: ['account-admin'] },
      });
      privateKeys.push(created.body.privateKey);
      expect(created.body.accountId).toBe(b.accountId);
      expect((await a.account.request('GET', '/v1/account/keys')).body.items).toEqual(before.body.items);
    },
    'GET /account/keys': async (a, b) => {
      const mine = (await a.account.request('GET', '/v1/account/keys')).body.items.map((k: any) => k.publicKey);
      const theirs = (await b.account.request('GET', '/v1/account/keys')).body.items.map((k: any) => k.publicKey);
      expect(theirs.filter((k: string) => mine.includes(k))).toEqual([]);
    },
    'DELETE /account/keys/:publicKey': async (a, b) => {
      const aKey = (await a.account.request('GET', '/v1/account/keys')).body.items[0].publicKey;
      await notFound(b.account.request('DELETE', `/v1/account/keys/${aKey}`));
      expect(await system.orm.em.fork().count(SecurityKey, { publicKey: aKey })).toBe(1);
    },
    'POST /account/tenants/:tenantId/keys': (a, b) =>
      notFound(
        b.account.request('POST', `/v1/account/tenants/${a.tenantId}/keys`, {
          body: { name: 'x', roles: ['tenant-admin'] },
        }),
      ),
    'GET /account/tenants/:tenantId/keys': (a, b) =>
      notFound(b.account.request('GET', `/v1/account/tenants/${a.tenantId}/keys`)),
    'DELETE /account/tenants/:tenantId/keys/:publicKey': async (a, b) => {
      await notFound(b.account.request('DELETE', `/v1/account/tenants/${a.tenantId}/keys/${a.publicKey}`));
      // Even naming B's own tenant, A's key is not B's to delete.
      await notFound(b.account.request('DELETE', `/v1/account/tenants/${b.tenantId}/keys/${a.publicKey}`));
      expect((await a.client.request('GET', '/v1/order-management')).status).toBe(200);
    },
    'GET /marketplace/apps': async (a, b) => {
      // The catalog is the platform's, the same for everyone.
      expect((await b.client.request('GET', '/v1/marketplace/apps')).body).toEqual(
        (await a.client.request('GET', '/v1/marketplace/apps')).body,
      );
    },
    'GET /marketplace/apps/:appId': async (a, b) => {
      const path = '/v1/marketplace/apps/SANDBOX_VOUCHERS';
      expect((await b.client.request('GET', path)).body).toEqual((await a.client.request('GET', path)).body);
    },
    'POST /marketplace/apps/:appId/install': async (a, b) => {
      expect(
        (
          await b.client.request('POST', '/v1/marketplace/apps/SANDBOX_BANK/install', {
            body: { configuration: { apiKey: 'sk_test_bbbbbbbbbbbb' } },
          })
        ).status,
      ).toBe(201);
      expect((await a.client.request('GET', '/v1/marketplace/installed/SANDBOX_BANK')).status).toBe(404);
    },
    'GET /marketplace/installed': async (_a, b) => {
      const mine = (await b.client.request('GET', '/v1/marketplace/installed')).body.items.map((i: any) => i.appId);
      expect(mine).not.toContain('SANDBOX_VOUCHERS');
    },
    'GET /marketplace/installed/:appId': (_a, b) =>
      notFound(b.client.request('GET', '/v1/marketplace/installed/SANDBOX_VOUCHERS')),
    'PUT /marketplace/installed/:appId/configuration': async (a, b) => {
      await notFound(
        b.client.request('PUT', '/v1/marketplace/installed/SANDBOX_VOUCHERS/configuration', {
          body: { configuration: {} },
        }),
      );
      expect((await a.client.request('GET', '/v1/marketplace/installed/SANDBOX_VOUCHERS')).body.secretsSet).toEqual([
        'apiKey',
      ]);
    },
    'POST /marketplace/installed/:appId/uninstall': async (a, b) => {
      await notFound(b.client.request('POST', '/v1/marketplace/installed/SANDBOX_VOUCHERS/uninstall'));
      expect((await a.client.request('GET', '/v1/marketplace/installed/SANDBOX_VOUCHERS')).status).toBe(200);
    },
    ...schemeIsolation('collect'),
    ...schemeIsolation('payout'),
    'GET /catalog/vouchers': async (a, b) => {
      expect((await b.client.request('GET', '/v1/catalog/vouchers')).body).toEqual(
        (await a.client.request('GET', '/v1/catalog/vouchers')).body,
      );
    },
    'POST /voucher-groups': async (a, b) => {
      const before = (await a.client.request('GET', '/v1/voucher-groups')).body.items;
      expect((await b.client.request('POST', '/v1/voucher-groups', { body: { name: 'b', vouchers: [] } })).status).toBe(
        201,
      );
      expect((await a.client.request('GET', '/v1/voucher-groups')).body.items).toEqual(before);
    },
    'GET /voucher-groups': async (_a, b) => {
      const ids = (await b.client.request('GET', '/v1/voucher-groups')).body.items.map((g: any) => g.voucherGroupId);
      expect(ids).not.toContain(aObjects.voucherGroupId);
    },
    'GET /voucher-groups/:voucherGroupId': (_a, b) =>
      notFound(b.client.request('GET', `/v1/voucher-groups/${aObjects.voucherGroupId}`)),
    'PUT /voucher-groups/:voucherGroupId': async (a, b) => {
      await notFound(
        b.client.request('PUT', `/v1/voucher-groups/${aObjects.voucherGroupId}`, {
          body: { name: 'stolen', vouchers: [] },
        }),
      );
      expect((await a.client.request('GET', `/v1/voucher-groups/${aObjects.voucherGroupId}`)).body.name).toBe(
        'a-group',
      );
    },
    'DELETE /voucher-groups/:voucherGroupId': async (a, b) => {
      await notFound(b.client.request('DELETE', `/v1/voucher-groups/${aObjects.voucherGroupId}`));
      expect((await a.client.request('GET', `/v1/voucher-groups/${aObjects.voucherGroupId}`)).status).toBe(200);
    },
    ...webhookIsolation(),
    'GET /account/audit': async (a, b) => {
      const theirs = (await b.account.request('GET', '/v1/account/audit?limit=100')).body.items;
      expect(theirs.length).toBeGreaterThan(0);
      expect(theirs.filter((e: any) => e.accountId !== b.accountId || e.tenantId === a.tenantId)).toEqual([]);
    },
  };

  /** A's objects that B tries to reach, made in the test below. */
  const aObjects = {
    collectSchemeId: '',
    payoutSchemeId: '',
    voucherGroupId: '',
    endpointId: '',
    deliveryId: '',
    eventIds: [] as string[],
    instrumentId: '',
    runId: '',
  };

  function webhookIsolation(): Record<string, Check> {
    const endpoint = () => `/v1/webhooks/endpoints/${aObjects.endpointId}`;
    const delivery = () => `/v1/webhooks/deliveries/${aObjects.deliveryId}`;
    /** A's endpoint as A sees it: any change B managed would show here. */
    const aEndpoint = async (a: TenantFixture) => (await a.client.request('GET', endpoint())).body;
    const aDeliveryCount = async (a: TenantFixture) =>
      (await a.client.request('GET', '/v1/webhooks/deliveries?limit=100')).body.items.length;
    return {
      'POST /webhooks/endpoints': async (a, b) => {
        const before = (await a.client.request('GET', '/v1/webhooks/endpoints')).body.items;
        expect((await b.client.request('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url } })).status).toBe(
          201,
        );
        expect((await a.client.request('GET', '/v1/webhooks/endpoints')).body.items).toEqual(before);
      },
      'GET /webhooks/endpoints': async (_a, b) => {
        const ids = (await b.client.request('GET', '/v1/webhooks/endpoints')).body.items.map((e: any) => e.endpointId);
        expect(ids).not.toContain(aObjects.endpointId);
      },
      'GET /webhooks/endpoints/:endpointId': (_a, b) => notFound(b.client.request('GET', endpoint())),
      'PATCH /webhooks/endpoints/:endpointId': async (a, b) => {
        const before = await aEndpoint(a);
        await notFound(b.client.request('PATCH', endpoint(), { body: { url: 'https://example.com/stolen' } }));
        expect(await aEndpoint(a)).toEqual(before);
      },
      'DELETE /webhooks/endpoints/:endpointId': async (a, b) => {
        await notFound(b.client.request('DELETE', endpoint()));
        expect((await a.client.request('GET', endpoint())).status).toBe(200);
      },
      'POST /webhooks/endpoints/:endpointId/rotate-secret': async (a, b) => {
        const before = await aEndpoint(a);
        await notFound(b.client.request('POST', `${endpoint()}/rotate-secret`, { body: { graceSeconds: 0 } }));
        expect(await aEndpoint(a)).toEqual(before);
      },
      'POST /webhooks/endpoints/:endpointId/recover': async (a, b) => {
        const before = await aDeliveryCount(a);
        await notFound(b.client.request('POST', `${endpoint()}/recover`, { body: { since: '2020-01-01T00:00:00Z' } }));
        expect(await aDeliveryCount(a)).toBe(before);
      },
      'GET /webhooks/deliveries': async (_a, b) => {
        const ids = (await b.client.request('GET', '/v1/webhooks/deliveries?limit=100')).body.items.map(
          (d: any) => d.deliveryId,
        );
        expect(ids).not.toContain(aObjects.deliveryId);
      },
      'GET /webhooks/deliveries/:deliveryId': (_a, b) => notFound(b.client.request('GET', delivery())),
      'POST /webhooks/deliveries/:deliveryId/replay': async (a, b) => {
        const before = await aDeliveryCount(a);
        await notFound(b.client.request('POST', `${delivery()}/replay`));
        expect(await aDeliveryCount(a)).toBe(before);
      },
      'GET /events': async (_a, b) => {
        const ids = (await b.client.request('GET', '/v1/events?limit=100')).body.items.map((e: any) => e.eventId);
        expect(ids.length).toBeGreaterThan(0); // B's own order's events
        expect(ids.filter((id: string) => aObjects.eventIds.includes(id))).toEqual([]);
      },
    };
  }

  function schemeIsolation(kind: 'collect' | 'payout'): Record<string, Check> {
    const base = `/v1/schemes/${kind}`;
    const id = () => (kind === 'collect' ? aObjects.collectSchemeId : aObjects.payoutSchemeId);
    const body = {
      name: 'stolen',
      rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
    };
    return {
      [`POST /schemes/${kind}`]: async (a, b) => {
        const before = (await a.client.request('GET', base)).body.items;
        const bBody = kind === 'collect' ? body : { name: 'b payout', rules: [] };
        await b.client.request('POST', base, { body: bBody });
        expect((await a.client.request('GET', base)).body.items).toEqual(before);
      },
      [`GET /schemes/${kind}`]: async (_a, b) => {
        expect((await b.client.request('GET', base)).body.items.map((s: any) => s.schemeId)).not.toContain(id());
      },
      [`GET /schemes/${kind}/:schemeId`]: (_a, b) => notFound(b.client.request('GET', `${base}/${id()}`)),
      [`PUT /schemes/${kind}/:schemeId`]: async (a, b) => {
        await notFound(b.client.request('PUT', `${base}/${id()}`, { body }));
        expect((await a.client.request('GET', `${base}/${id()}`)).body.version).toBe(1);
      },
      [`DELETE /schemes/${kind}/:schemeId`]: async (a, b) => {
        await notFound(b.client.request('DELETE', `${base}/${id()}`));
        expect((await a.client.request('GET', `${base}/${id()}`)).status).toBe(200);
      },
      [`GET /schemes/${kind}/:schemeId/options`]: (_a, b) =>
        notFound(b.client.request('GET', `${base}/${id()}/options?amount=10.00&currency=EUR&country=FR`)),
    };
  }

  function orderBody(orderRef: string, instructionRef: string) {
    return {
      orderRef,
      instructions: [
        {
          instructionRef,
          direction: 'DEBIT',
          amount: '1.00',
          currency: 'EUR',
          country: 'FR',
          openDate: '2031-01-01',
          dueDate: '2031-01-02',
        },
      ],
    };
  }

  it('has an entry for every route that is not public', () => {
    const routeKeys = system.api.routes
      .filter((r) => r.scope !== 'public')
      .map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(Object.keys(ISOLATION).sort()).toEqual(routeKeys.sort());
  });

  it('shows tenant B nothing of tenant A', async () => {
    const a = await tenantFixture();
    const b = await tenantFixture();
    // A's endpoint is there before A's orders, so their events are delivered to it.
    aObjects.endpointId = (
      await a.client.request('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url } })
    ).body.endpointId;
    expect(
      (await a.client.request('POST', '/v1/order-management', { body: orderBody('iso-order', 'a-instruction') }))
        .status,
    ).toBe(202);
    expect(
      (await a.client.request('POST', '/v1/order-management', { body: orderBody('iso-order-only-a', 'x') })).status,
    ).toBe(202);
    for (const customerRef of ['iso-customer', 'iso-customer-only-a']) {
      const customer = await a.client.request('POST', '/v1/customers', {
        body: { customerRef, name: 'A’s customer' },
      });
      expect(customer.status).toBe(201);
    }
    // A card A's customer saved (as the payment page keeps one from the provider's form).
    const em = system.orm.em.fork();
    const instrument = new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys)).add(
      em,
      a.tenantId,
      'SANDBOX_CARD',
      { token: 'tok_isolation_0000', paymentMethod: 'CARD', display: { brand: 'visa', last4: '4242' } },
      { customer: await em.findOneOrFail(Customer, { tenantId: a.tenantId, customerRef: 'iso-customer-only-a' }) },
    );
    await em.flush();
    aObjects.instrumentId = instrument.id;
    // A's configuration: an app B does not have, a voucher group, a collection and a payout scheme.
    expect(
      (
        await a.client.request('POST', '/v1/marketplace/apps/SANDBOX_VOUCHERS/install', {
          body: { configuration: { apiKey: 'sk_test_aaaaaaaaaaaa' } },
        })
      ).status,
    ).toBe(201);
    aObjects.voucherGroupId = (
      await a.client.request('POST', '/v1/voucher-groups', {
        body: { name: 'a-group', vouchers: [{ voucherId: 'amazon-de', enabled: true }] },
      })
    ).body.voucherGroupId;
    aObjects.collectSchemeId = (await a.client.request('GET', '/v1/schemes/collect')).body.items[0].schemeId;
    const payout = await a.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'a payout',
        rules: [
          {
            voucherGroupIds: [aObjects.voucherGroupId],
            options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
          },
        ],
      },
    });
    expect(payout.status).toBe(201);
    aObjects.payoutSchemeId = payout.body.schemeId;
    const deliveries = await eventually(
      async () => (await a.client.request('GET', '/v1/webhooks/deliveries?limit=100')).body.items,
      (items: any[]) => items.length >= 2,
      { what: "A's order.created deliveries" },
    );
    aObjects.deliveryId = deliveries[0].deliveryId;
    aObjects.eventIds = (await a.client.request('GET', '/v1/events?limit=100')).body.items.map((e: any) => e.eventId);
    expect(aObjects.eventIds.length).toBeGreaterThanOrEqual(2);
    for (const [route, check] of Object.entries(ISOLATION)) {
      try {
        await check(a, b);
      } catch (err) {
        throw new Error(`${route}: ${(err as Error).message}`);
      }
    }
    const untouched = await a.client.request('GET', '/v1/order-management/iso-order-only-a');
    expect(untouched.body).toMatchObject({
      status: 'ACTIVE',
      instructions: [{ instructionRef: 'x', amount: '1.00', status: expect.stringMatching(/PENDING|OPEN/) }],
    });
  });
});

describe('abuse limits', () => {
  it('answers 429 with Retry-After once a key passes its per-minute limit, and counts keys apart', async () => {
    const limited = await system.startApi({ settings: { rateLimitPerMinute: 3 } });
    try {
      const first = await tenantFixture();
      const second = await tenantFixture();
      const asFirst = new PaymentSchedulerClient({
        baseUrl: limited.url,
        publicKey: first.publicKey,
        privateKey: first.privateKey,
        tenantId: first.tenantId,
      });
      const asSecond = new PaymentSchedulerClient({
        baseUrl: limited.url,
        publicKey: second.publicKey,
        privateKey: second.privateKey,
        tenantId: second.tenantId,
      });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await asFirst.request('GET', '/v1/order-management')).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const limitedRes = await asFirst.request('GET', '/v1/order-management');
      expect(limitedRes.body).toMatchObject({ status: 429, code: 'rate_limited' });
      expect(Number(limitedRes.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await asSecond.request('GET', '/v1/order-management')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('callers that cannot authenticate', () => {
  it('reads no batch from a caller it cannot authenticate: 401 before the body, whatever it holds', async () => {
    for (const path of ['/v1/order-management/batch', '/v1/order-management/batch/']) {
      const res = await fetch(`${system.api.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Not JSON: read, it would be 400 malformed_json.
        body: `{"orders": [${'{"orderRef": "x"},'.repeat(1000)}`,
      });
      expect(res.status, path).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'unauthenticated' });
    }
  });

  it('answers 429 once an address passes its limit of refused tokens, and signs its keys in as before', async () => {
    const limited = await system.startApi({
      settings: { rateLimitPerMinute: 3, rateLimitNamespace: `unauth-${randomUUID()}` },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${limited.url}/v1/order-management`, {
          headers: { authorization: `Bearer not-a-token-${i}` },
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      const tenant = await tenantFixture();
      expect((await clientOf(tenant, limited.url).request('GET', '/v1/order-management')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

/** The tenant's client of one of several APIs. */
const clientOf = (tenant: TenantFixture, baseUrl: string) =>
  new PaymentSchedulerClient({
    baseUrl,
    publicKey: tenant.publicKey,
    privateKey: tenant.privateKey,
    tenantId: tenant.tenantId,
  });

describe('rate limits across API processes', () => {
  // The embedded database is one session behind every connection, so the limiter's named prepared
  // statements collide and each process falls back to counting alone; `npm start` is one process
  // anyway. CI runs this on PostgreSQL.
  it.skipIf(inject('databasePoolSize') === 1)(
    'holds a key to one limit however many APIs it spreads its requests over',
    async () => {
      // Two APIs of one deployment (same namespace), each with its own memory: only the database is shared.
      const namespace = `shared-${randomUUID()}`;
      const one = await system.startApi({ settings: { rateLimitPerMinute: 4, rateLimitNamespace: namespace } });
      const two = await system.startApi({ settings: { rateLimitPerMinute: 4, rateLimitNamespace: namespace } });
      try {
        const tenant = await tenantFixture();
        const via = (url: string) => clientOf(tenant, url);
        const statuses: number[] = [];
        const [throughOne, throughTwo] = [via(one.url), via(two.url)];
        for (const client of [throughOne, throughTwo, throughOne, throughTwo, throughOne, throughTwo]) {
          statuses.push((await client.request('GET', '/v1/order-management')).status);
        }
        expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      } finally {
        await one.close();
        await two.close();
      }
    },
  );
});

describe('rate limit leases', () => {
  it.skipIf(inject('databasePoolSize') === 1)(
    'takes points from the shared count a few at a time, and still lets exactly the limit through',
    async () => {
      const namespace = `lease-${randomUUID()}`;
      const settings = { rateLimitPerMinute: 300, rateLimitNamespace: namespace };
      const [one, two] = [await system.startApi({ settings }), await system.startApi({ settings })];
      try {
        const tenant = await tenantFixture();
        const via = (url: string) => clientOf(tenant, url);
        const clients = [via(one.url), via(two.url)];
        const sharedCount = async () => {
          const rows = await system.orm.em
            .fork()
            .getConnection()
            .execute<{ points: number }[]>('select points from rate_limit_counter where key = ?', [
              `${namespace}:key:${tenant.publicKey}`,
            ]);
          return rows[0]?.points;
        };
        const statuses: number[] = [];
        const send = async (count: number) => {
          for (let i = 0; i < count; i++) {
            statuses.push((await clients[statuses.length % 2].request('GET', '/v1/order-management')).status);
          }
        };
        // Four requests, two through each API: each API took one lease of 3 points (a hundredth of 300).
        await send(4);
        expect(await sharedCount()).toBe(6);
        // Up to the limit and past it: leases shrink as the count runs out, so exactly 300 get through.
        await send(316);
        expect(statuses.filter((s) => s === 200)).toHaveLength(300);
        expect(statuses.slice(300).every((s) => s === 429)).toBe(true);
      } finally {
        await one.close();
        await two.close();
      }
    },
  );
});

describe('audit log', () => {
  it('records who changed what configuration, for account admins to read', async () => {
    const account = await system.newAccount();
    privateKeys.push(account.privateKey);
    const start = new Date().toISOString();
    const tenant = await account.client.request('POST', '/v1/account/tenants', {
      body: { name: 'Audited', timeZone: 'Europe/Paris' },
    });
    await account.client.request('PATCH', `/v1/account/tenants/${tenant.body.tenantId}`, {
      body: { dunning: { retryDelaysDays: [2, 4] } },
    });
    // A change naming nothing is refused, and recorded nowhere.
    const empty = await account.client.request('PATCH', `/v1/account/tenants/${tenant.body.tenantId}`, { body: {} });
    expect(empty).toMatchObject({ status: 400, body: { errors: [{ path: 'body', code: 'empty_amendment' }] } });
    const key = await account.client.request('POST', `/v1/account/tenants/${tenant.body.tenantId}/keys`, {
      body: { name: 'ops', roles: ['tenant-order-read'] },
    });
    privateKeys.push(key.body.privateKey);
    await account.client.request('DELETE', `/v1/account/tenants/${tenant.body.tenantId}/keys/${key.body.publicKey}`);

    const audit = await account.client.request('GET', `/v1/account/audit?since=${encodeURIComponent(start)}`);
    expect(audit.status).toBe(200);
    const entries = [...audit.body.items].reverse();
    expect(entries.map((e: any) => [e.action, e.targetId, e.actorKey])).toEqual([
      ['tenant.create', tenant.body.tenantId, account.publicKey],
      ['tenant.update', tenant.body.tenantId, account.publicKey],
      ['tenant-key.create', key.body.publicKey, account.publicKey],
      ['tenant-key.delete', key.body.publicKey, account.publicKey],
    ]);
    expect(entries[1].details).toEqual({ dunning: { retryDelaysDays: [2, 4] } });
    expect(JSON.stringify(audit.body)).not.toContain(key.body.privateKey);
    const later = await account.client.request(
      'GET',
      `/v1/account/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    expect(later.body.items).toEqual([]);
  });

  it('never shows a private key after creation', async () => {
    const tenant = await tenantFixture();
    const listed = await tenant.account.request('GET', `/v1/account/tenants/${tenant.tenantId}/keys`);
    expect(listed.body.items.map((k: any) => k.publicKey)).toContain(tenant.publicKey);
    expect(JSON.stringify(listed.body)).not.toContain(tenant.privateKey);
    expect(listed.body.items.every((k: any) => !('privateKey' in k))).toBe(true);
    const stored = await system.orm.em.fork().findOneOrFail(SecurityKey, { publicKey: tenant.publicKey });
    expect(stored.privateKeyCiphertext).not.toContain(tenant.privateKey);
  });
});

describe('logs', () => {
  // Last in the file: it reads what everything above logged.
  it('never contain a private key, a signature header or an access token', () => {
    expect(privateKeys.length).toBeGreaterThan(10);
    expectNoSecretsInLogs(system, privateKeys);
  });
});
