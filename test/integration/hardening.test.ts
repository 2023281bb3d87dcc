import { randomUUID } from 'node:crypto';
import got from 'got';
import { Client, Connection, ServiceError } from '@temporalio/client';
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildOrder } from '../../orders/order-plans.js';
import { signHmac } from '../../client/payment-scheduler-client.js';
import { IdempotencyStore } from '../../api/http/idempotency.js';
import { IdempotencyRecord, PaymentOrder, ProviderKeyScope, Tenant, UsedNonce } from '../../db/entities/index.js';
import { SecretBox } from '../../db/secret-box.js';
import { createLogger, serializeError } from '../../logger.js';
import { Housekeeping } from '../../worker/housekeeping.js';
import { KEY_SCOPE_KEPT_DAYS, keyScopesIn } from '../../orders/activities/key-scopes.js';
import { OrphanOrderReconciler, type ReconcilerOptions } from '../../orders/reconciler.js';
import { startOrder } from '../../orders/start-order.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { eventually } from '../support/eventually.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { resolvedTo } from '../support/tenant-rows.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';
import type { AppConnector } from '../../apps/app-connector.js';
import { lane } from '../support/lanes.js';

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

function instruction(ref: string, overrides: Record<string, unknown> = {}) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '10.00',
    currency: 'EUR',
    country: 'FR',
    openDate: '2031-01-01',
    dueDate: '2031-01-02',
    financialInstrumentId: 'card_visa_4242',
    ...overrides,
  };
}

async function createOrder(tenant: TenantFixture, orderRef: string, instructions = [instruction('a')]) {
  return tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
}

describe('secrets in stored idempotent answers', () => {
  it('seals a replayable answer that holds a private key, and replays it intact', async () => {
    const account = await system.newAccount();
    const headers = { 'idempotency-key': `key-${randomUUID()}` };
    const body = { name: 'replayed key', roles: ['account-admin'] };
    const first = await account.client.request('POST', '/v1/account/keys', { body, headers });
    expect(first.status).toBe(201);
    system.issuedSecrets.push(first.body.privateKey);

    const record = await system.orm.em
      .fork()
      .findOneOrFail(IdempotencyRecord, { scope: `account:${account.accountId}`, key: headers['idempotency-key'] });
    expect(record.responseCiphertext).toMatch(/^v2\./);
    expect(JSON.stringify(record)).not.toContain(first.body.privateKey);

    const replay = await account.client.request('POST', '/v1/account/keys', { body, headers });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
  });
});

describe('bounded input', () => {
  it('answers 400 naming the field for an amount beyond what the database can hold, and logs no value', async () => {
    const tenant = await system.newTenant();
    const res = await createOrder(tenant, 'huge-1', [instruction('a', { amount: '999999999999999999.00' })]);
    expect(res).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'instructions[0].amount', code: 'amount_too_large' }] },
    });
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId })).toBe(0);
  });

  it('logs a failed statement without its bound values', async () => {
    const secretValue = '99999999999999999999123';
    const failure = await system.orm.em
      .fork()
      .getConnection()
      .execute('select ?::bigint as n', [secretValue])
      .catch((err: unknown) => err);
    expect(String((failure as Error).message)).toContain(secretValue); // what a plain serializer would have logged
    const logged = JSON.stringify(serializeError(failure));
    expect(logged).not.toContain(secretValue);
    expect(logged).toContain('22003'); // numeric value out of range: the failure is still named
  });

  it('logs an HTTP client’s failure without the request it sent, whose headers carry a credential', async () => {
    const apiKey = newSandboxApiKey();
    const failure = await got
      .post(`${system.sandbox.url}/nowhere`, {
        headers: { authorization: `Bearer ${apiKey}` },
        json: { amountMinor: '100' },
        retry: { limit: 0 },
      })
      .catch((err: unknown) => err);
    expect(JSON.stringify(failure)).toContain(apiKey); // what a plain serializer would have logged
    const logged = JSON.stringify(serializeError(failure));
    expect(logged).not.toContain(apiKey);
    expect(JSON.parse(logged)).toMatchObject({ type: 'HTTPError', code: 'ERR_NON_2XX_3XX_RESPONSE' });
    // Only properties that name a failure are kept: a bad URL's error holds the URL, query and all.
    const badUrl = (() => {
      try {
        return new URL(`https://hooks example.com/in?token=${apiKey}`);
      } catch (err) {
        return err;
      }
    })();
    expect(JSON.stringify(Object.entries(badUrl as object))).toContain(apiKey); // its `input`
    expect(serializeError(badUrl)).toMatchObject({ type: 'TypeError', code: 'ERR_INVALID_URL' });
    expect(JSON.stringify(serializeError(badUrl))).not.toContain(apiKey);
  });

  it('logs a request’s unexpected failure by its type, message and stack, and answers a bare 500', async () => {
    const { logger, lines } = capturingLogger('faulty-api', 'info');
    // An app connector with a bug: its callback parsing throws what no route expects.
    const faulty = {
      callbackReference() {
        throw new TypeError('connector fault: cannot read the reference');
      },
      verifyCallback: () => undefined,
    } as Partial<AppConnector> as AppConnector;
    const api = await system.startApi({ logger, apps: new Map([['FAULTY', faulty]]) });
    try {
      const res = await fetch(`${api.url}/v1/providers/FAULTY/callbacks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(500);
      const problem = (await res.json()) as { code: string; detail: string; requestId: string };
      expect(problem.code).toBe('internal_error');
      expect(problem.detail).not.toContain('connector fault');
      // pino-http writes the request's own line once the response has finished.
      type Line = { msg: string; req?: { id: string }; err?: Record<string, string>; failure?: string };
      const ofRequest = await eventually(
        () => lines.map((line) => JSON.parse(line) as Line).filter((line) => line.req?.id === problem.requestId),
        (found) => found.some((line) => line.msg.endsWith('→ 500')),
        { what: 'the request’s own log line' },
      );
      const logged = ofRequest.find((line) => line.msg === 'request failed')!;
      const finished = ofRequest.find((line) => line.msg === 'POST /v1/providers/:appId/callbacks → 500')!;
      // pino-http hands its serializer pino's own copy of the error: the log once said "[object Object]".
      expect(logged.err).toMatchObject({ type: 'TypeError', message: 'connector fault: cannot read the reference' });
      expect(logged.err!.stack).toContain('callbackReference');
      // The request's own line names the error (once "failed with status code 500"), without its stack again.
      expect(finished.failure).toBe('TypeError: connector fault: cannot read the reference');
      expect(finished.err).toBeUndefined();
    } finally {
      await api.close();
    }
  });

  it('refuses an HMAC header with an oversized part as a bad header, not a server error', async () => {
    const tenant = await system.newTenant();
    const [scheme, parts] = signHmac(tenant.publicKey, tenant.privateKey).split(' ');
    const [publicKey, , epochSeconds, signature] = parts.split(':');
    for (const header of [
      `${scheme} ${publicKey}:${'n'.repeat(5000)}:${epochSeconds}:${signature}`,
      `${scheme} ${publicKey}:${'n'.repeat(129)}:${epochSeconds}:${signature}`,
    ]) {
      const res = await fetch(`${system.api.url}/v1/identity/hmac`, {
        method: 'POST',
        headers: { authorization: header },
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_authorization_header');
    }
    const longBearer = await fetch(`${system.api.url}/v1/order-management`, {
      headers: { authorization: `Bearer ${'a'.repeat(5_000)}`, 'x-tenant-id': tenant.tenantId },
    });
    expect(longBearer.status).toBe(401);
  });

  it('refuses what PostgreSQL could not store: NUL characters, unpaired surrogates, years outside 2000–2199, funds currencies', async () => {
    const tenant = await system.newTenant();
    const cases: [unknown, string, string][] = [
      [
        { orderRef: 'nul-1', metadata: { note: 'a\u0000b' }, instructions: [instruction('a')] },
        'metadata.note',
        'invalid_character',
      ],
      [
        { orderRef: 'sur-1', metadata: { note: 'a\ud800b' }, instructions: [instruction('a')] },
        'metadata.note',
        'invalid_character',
      ],
      [
        { orderRef: 'y0-1', instructions: [instruction('a', { openDate: '0000-01-01', dueDate: '0000-01-02' })] },
        'instructions[0].openDate',
        'invalid_date',
      ],
      [
        { orderRef: 'y9-1', instructions: [instruction('a', { openDate: '2200-01-01', dueDate: '2200-01-02' })] },
        'instructions[0].openDate',
        'invalid_date',
      ],
      [
        { orderRef: 'xau-1', instructions: [instruction('a', { currency: 'XAU' })] },
        'instructions[0].currency',
        'invalid_currency',
      ],
      [
        { orderRef: 'usn-1', instructions: [instruction('a', { currency: 'USN' })] },
        'instructions[0].currency',
        'invalid_currency',
      ],
    ];
    for (const [body, path, code] of cases) {
      const res = await tenant.client.request('POST', '/v1/order-management', { body });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path, code })]));
    }
    const account = await system.newAccount();
    const named = await account.client.request('POST', '/v1/account/tenants', { body: { name: 'nul\u0000name' } });
    expect(named).toMatchObject({ status: 400, body: { errors: [{ path: 'name', code: 'invalid_character' }] } });
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId })).toBe(0);
  });

  it('refuses a forged cursor with a 400, whatever it holds', async () => {
    const tenant = await system.newTenant();
    for (const cursor of [
      { createdAt: '2027-01-01T00:00:00.000Z', id: 'not-a-uuid' },
      { createdAt: '-271821-04-20T00:00:00.000Z', id: randomUUID() },
    ]) {
      const encoded = Buffer.from(JSON.stringify(cursor)).toString('base64url');
      const res = await tenant.client.request('GET', `/v1/order-management?cursor=${encoded}`);
      expect(res).toMatchObject({ status: 400, body: { errors: [{ path: 'query.cursor', code: 'invalid_cursor' }] } });
    }
  });
});

describe('methods a route does not have', () => {
  it('answer 405 with the methods it has, in the one error format', async () => {
    const tenant = await system.newTenant();
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await tenant.client.request(method, '/v1/order-management');
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST, GET, HEAD');
      expect(res.body.code).toBe('method_not_allowed');
    }
    expect((await tenant.client.request('PUT', '/v1/no-such-route')).status).toBe(404);
  });
});

describe('bounded work per list', () => {
  it('lists orders with a count of their instructions by status, and gives the instructions on the detail route', async () => {
    const tenant = await system.newTenant();
    expect(
      (await createOrder(tenant, 'summary-1', [instruction('a'), instruction('b'), instruction('c')])).status,
    ).toBe(202);
    const list = await tenant.client.request('GET', '/v1/order-management');
    const [item] = list.body.items;
    expect(item).not.toHaveProperty('instructions');
    expect(item.instructionSummary.total).toBe(3);
    expect(Object.values(item.instructionSummary.byStatus).reduce((a: number, b) => a + (b as number), 0)).toBe(3);
    const detail = await tenant.client.request('GET', '/v1/order-management/summary-1');
    expect(detail.body.instructions.map((i: { instructionRef: string }) => i.instructionRef)).toEqual(['a', 'b', 'c']);
  });

  it('filters by status and customerRef, pages through all of them once', async () => {
    const tenant = await system.newTenant();
    for (const [ref, customerRef] of [
      ['f-1', 'cust-a'],
      ['f-2', 'cust-b'],
      ['f-3', 'cust-a'],
      ['f-4', 'cust-a'],
    ]) {
      const res = await tenant.client.request('POST', '/v1/order-management', {
        body: { orderRef: ref, customerRef, instructions: [instruction('a')] },
      });
      expect(res.status).toBe(202);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { orderRef: string }[]; nextCursor: string | null } } = await tenant.client.request(
        'GET',
        `/v1/order-management?customerRef=cust-a&status=ACTIVE&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.body.items.map((o) => o.orderRef));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['f-4', 'f-3', 'f-1']);
  });
});

describe('idempotency under failure', () => {
  // The embedded database runs one transaction at a time across all connections, so a lock held
  // by the test would hold up the request's claim too: this needs PostgreSQL (CI has it).
  it.skipIf(inject('databasePoolSize') === 1)(
    'gives a retry the first answer when the client hung up while the first request was still committing',
    async () => {
      const account = await system.newAccount();
      const key = `key-${randomUUID()}`;
      const body = { name: `hang-up-${randomUUID()}` };
      const token = await account.client.accessToken();
      const headers = {
        authorization: `Bearer ${token}`,
        'x-account-id': account.accountId,
        'content-type': 'application/json',
        'idempotency-key': key,
      };

      // Hold the account row, so the tenant insert (which must check its account) waits.
      const blocker = new pg.Client(lane().databaseUrl);
      await blocker.connect();
      await blocker.query('begin');
      await blocker.query('select id from account where id = $1 for update', [account.accountId]);
      const hungUp = new AbortController();
      const first = fetch(`${system.api.url}/v1/account/tenants`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: hungUp.signal,
      }).catch((err: unknown) => err);
      await eventually(
        () => system.orm.em.fork().count(IdempotencyRecord, { scope: `account:${account.accountId}`, key }),
        (n) => n === 1,
        { what: 'the first request to claim its key' },
      );
      hungUp.abort();
      expect(await first).toBeInstanceOf(Error);
      await blocker.query('commit');
      await blocker.end();

      const retried = await eventually(
        () => account.client.request('POST', '/v1/account/tenants', { body, headers: { 'idempotency-key': key } }),
        (res) => res.status !== 409,
        { what: 'the retry to get an answer other than in-progress' },
      );
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(await system.orm.em.fork().count(Tenant, { accountId: account.accountId, name: body.name })).toBe(1);
    },
  );

  it('lets a retry run once the lease of a request that died has run out, and not before', async () => {
    const account = await system.newAccount();
    const body = { name: `died-${randomUUID()}` };
    const key = `key-${randomUUID()}`;
    const res0 = await account.client.request('POST', '/v1/account/tenants', {
      body,
      headers: { 'idempotency-key': key },
    });
    expect(res0.status).toBe(201);
    // What a request that died mid-way leaves: its claim, no answer, and nothing else (its transaction rolled back).
    const em = system.orm.em.fork();
    await em.nativeDelete(Tenant, { id: res0.body.tenantId });
    await em.nativeUpdate(
      IdempotencyRecord,
      { scope: `account:${account.accountId}`, key },
      {
        responseStatus: null,
        responseCiphertext: null,
        leaseToken: randomUUID(),
        leaseExpiresAt: new Date(Date.now() + 60_000),
      },
    );

    const early = await account.client.request('POST', '/v1/account/tenants', {
      body,
      headers: { 'idempotency-key': key },
    });
    expect(early).toMatchObject({ status: 409, body: { code: 'idempotency_request_in_progress' } });

    await em.nativeUpdate(
      IdempotencyRecord,
      { scope: `account:${account.accountId}`, key },
      { leaseExpiresAt: new Date(Date.now() - 1) },
    );
    const late = await account.client.request('POST', '/v1/account/tenants', {
      body,
      headers: { 'idempotency-key': key },
    });
    expect(late.status).toBe(201);
    expect(late.headers.get('idempotent-replayed')).toBeNull();
    const again = await account.client.request('POST', '/v1/account/tenants', {
      body,
      headers: { 'idempotency-key': key },
    });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.tenantId).toBe(late.body.tenantId);
    expect(await system.orm.em.fork().count(Tenant, { accountId: account.accountId, name: body.name })).toBe(1);
  });

  it('holds the key of a request that runs longer than its lease: a retry meanwhile is told it is in progress, and the work runs once', async () => {
    // Renewed every third of it: a lease of a second and a half outlasts a busy machine's pauses.
    const leaseMs = 1_500;
    const store = new IdempotencyStore(system.orm, SecretBox.fromMasterKeys(system.masterKeys), leaseMs);
    const request = {
      scope: `tenant:${randomUUID()}`,
      actor: 'key-a',
      key: `key-${randomUUID()}`,
      method: 'POST',
      path: '/v1/reconciliation/runs',
      body: {},
    };
    let runs = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    // Outside a transaction, as a reconciliation run or a batch of orders is taken.
    const work = async () => {
      runs += 1;
      await finished;
      return { status: 201, body: { run: runs } };
    };
    const claimedAt = Date.now();
    const first = store.run(request, work, { transactional: false });
    const record = () => system.orm.em.fork().findOne(IdempotencyRecord, { scope: request.scope, key: request.key });
    // Three leases on: the first request still runs, and still holds its key.
    await eventually(record, (r) => (r?.leaseExpiresAt?.getTime() ?? 0) > claimedAt + 3 * leaseMs, {
      what: 'the lease renewed past three leases',
    });
    await expect(store.run(request, work, { transactional: false })).rejects.toMatchObject({
      status: 409,
      code: 'idempotency_request_in_progress',
    });
    finish();
    expect(await first).toEqual({ reply: { status: 201, body: { run: 1 } }, replayed: false });
    expect(await store.run(request, work, { transactional: false })).toEqual({
      reply: { status: 201, body: { run: 1 } },
      replayed: true,
    });
    expect(runs).toBe(1);
  });

  it('frees the key of a request that failed, so it can be retried', async () => {
    const tenant = await system.newTenant();
    const key = `key-${randomUUID()}`;
    const first = await createOrder(tenant, 'retry-after-409', [instruction('a')]);
    expect(first.status).toBe(202);
    const conflict = await tenant.client.request('POST', '/v1/order-management', {
      body: { orderRef: 'retry-after-409', instructions: [instruction('b')] },
      headers: { 'idempotency-key': key },
    });
    expect(conflict.status).toBe(409);
    expect(await system.orm.em.fork().count(IdempotencyRecord, { scope: `tenant:${tenant.tenantId}`, key })).toBe(0);
  });
});

describe('periodic clean-up instead of per-request deletes', () => {
  it('leaves expired rows to housekeeping, which deletes them', async () => {
    const em = system.orm.em.fork();
    const stranger = randomUUID();
    await em.insert(UsedNonce, { publicKey: stranger, nonce: 'old', expiresAt: new Date(Date.now() - 60_000) });
    const tenant = await system.newTenant();
    // A sign-in and a POST with a key: neither touches another caller's expired rows any more.
    expect(
      (
        await tenant.client.request('POST', '/v1/order-management', {
          body: { orderRef: 'hk-1', instructions: [instruction('a')] },
          headers: { 'idempotency-key': 'hk' },
        })
      ).status,
    ).toBe(202);
    expect(await em.fork().count(UsedNonce, { publicKey: stranger })).toBe(1);

    // Before the run: a sign-in's nonce (15 minutes) that expires during it is the next run's to delete.
    const before = new Date();
    const deleted = await new Housekeeping(system.orm).runOnce();
    expect(deleted.used_nonce).toBeGreaterThanOrEqual(1);
    expect(await em.fork().count(UsedNonce, { publicKey: stranger })).toBe(0);
    expect(await em.fork().count(UsedNonce, { expiresAt: { $lt: before } })).toBe(0);
  });

  it('keeps where a key was first sent: no later call’s destination replaces it, and each call keeps it another 90 days', async () => {
    const scopes = keyScopesIn(system.orm);
    const key = { tenantId: randomUUID(), appId: 'HTTP_CONNECTOR', idempotencyKey: `${randomUUID()}:o:a:1` };
    const [a, b] = ['a', 'b'].map((d) => d.repeat(64));
    expect(await scopes.firstSentTo(key, a)).toBe(a);
    expect(await scopes.firstSentTo(key, b)).toBe(a);
    const row = { idempotencyKey: key.idempotencyKey };
    await system.orm.em.fork().nativeUpdate(ProviderKeyScope, row, { usedAt: new Date(Date.now() - 86_400_000) });
    expect(await scopes.firstSentTo(key, a)).toBe(a);
    const { usedAt } = await system.orm.em.fork().findOneOrFail(ProviderKeyScope, row);
    expect(Date.now() - usedAt.getTime()).toBeLessThan(60_000);
    const unseen = { ...key, idempotencyKey: `${key.idempotencyKey}0` };
    expect(await scopes.firstSentTo(unseen, b), 'a key kept nowhere yet (sent before this table)').toBe(b);
  });

  it('deletes where a key was first sent once no call has used it for KEY_SCOPE_KEPT_DAYS, and only then', async () => {
    const em = system.orm.em.fork();
    const tenantId = randomUUID();
    const days = (n: number) => new Date(Date.now() - n * 86_400_000);
    const sent = (idempotencyKey: string, usedAt: Date) => ({
      idempotencyKey,
      tenantId,
      appId: 'HTTP_CONNECTOR',
      scopeDigest: '0'.repeat(64),
      usedAt,
    });
    await em.insertMany(ProviderKeyScope, [
      sent(`${tenantId}:done`, days(KEY_SCOPE_KEPT_DAYS + 1)),
      sent(`${tenantId}:asked-about`, days(KEY_SCOPE_KEPT_DAYS - 1)),
    ]);
    const deleted = await new Housekeeping(system.orm).runOnce();
    expect(deleted.provider_key_scope).toBeGreaterThanOrEqual(1);
    const left = await em.fork().find(ProviderKeyScope, { tenantId });
    expect(left.map((row) => row.idempotencyKey)).toEqual([`${tenantId}:asked-about`]);
  });

  it('takes a nonce whose expired row still waits for housekeeping, and refuses one still live', async () => {
    const tenant = await system.newTenant();
    const nonce = randomUUID();
    await system.orm.em
      .fork()
      .insert(UsedNonce, { publicKey: tenant.publicKey, nonce, expiresAt: new Date(Date.now() - 1000) });
    const header = signHmac(tenant.publicKey, tenant.privateKey, '', Date.now(), nonce);
    const exchange = () =>
      fetch(`${system.api.url}/v1/identity/hmac`, { method: 'POST', headers: { authorization: header } });
    expect((await exchange()).status).toBe(201);
    expect((await exchange()).status).toBe(401);
  });
});

describe('behind a proxy', () => {
  it('counts sign-in attempts per client address from X-Forwarded-For only when told to trust the proxy', async () => {
    const attempt = (url: string, forwardedFor: string) =>
      fetch(`${url}/v1/identity/hmac`, {
        method: 'POST',
        headers: { authorization: 'Hmac x:y:1:z', 'x-forwarded-for': forwardedFor },
      }).then((r) => r.status);
    const trusting = await system.startApi({ settings: { rateLimitPerMinute: 2, trustProxy: 1 } });
    const untrusting = await system.startApi({ settings: { rateLimitPerMinute: 2, trustProxy: false } });
    try {
      expect([
        await attempt(trusting.url, '203.0.113.1'),
        await attempt(trusting.url, '203.0.113.1'),
        await attempt(trusting.url, '203.0.113.1'),
      ]).toEqual([401, 401, 429]);
      expect(await attempt(trusting.url, '203.0.113.2')).toBe(401);
      expect([
        await attempt(untrusting.url, '203.0.113.1'),
        await attempt(untrusting.url, '203.0.113.2'),
        await attempt(untrusting.url, '203.0.113.3'),
      ]).toEqual([401, 401, 429]);
    } finally {
      await trusting.close();
      await untrusting.close();
    }
  });
});

/** What an API that crashed between storing and starting leaves behind: rows without workflows. */
async function storeOrphans(tenant: TenantFixture, refs: string[]): Promise<void> {
  const em = system.orm.em.fork();
  const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
  for (const orderRef of refs)
    buildOrder(em, tenantRow, { orderRef, instructions: [instruction('a') as never] }, [
      resolvedTo('SANDBOX_CARD', 'CARD'),
    ]);
  await em.flush();
}

/** A reconciler of every orphan in the lane, each started through `start` (`startIt` is the real start). */
function reconcilerStarting(
  start: (order: PaymentOrder) => Promise<void>,
  options: Partial<ReconcilerOptions> = {},
): OrphanOrderReconciler {
  return new OrphanOrderReconciler({
    orm: system.orm,
    client: system.client,
    logger: createLogger('reconciler', 'silent'),
    graceMs: 0,
    start,
    ...options,
  });
}

/** A reconciler as `reconcilerStarting` builds it, whose log lines' messages a test reads. */
function reconcilerLogging(
  start: (order: PaymentOrder) => Promise<void>,
  options: Partial<ReconcilerOptions> = {},
): { reconciler: OrphanOrderReconciler; messages: () => string[] } {
  const { logger, lines } = capturingLogger('reconciler', 'warn');
  return {
    reconciler: reconcilerStarting(start, { logger, ...options }),
    messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg),
  };
}

const startIt = (order: PaymentOrder) => startOrder(system.client, system.orm, order);

/** What a start that ran out of its deadline throws (a large input, a shard away, Temporal's history away). */
function timedOutStart(): ServiceError {
  const cause = Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'), {
    code: GrpcStatus.DEADLINE_EXCEEDED,
    details: 'Deadline exceeded',
    metadata: new Metadata(),
  });
  return new ServiceError('Failed to start Workflow', { cause });
}

describe('the orphan-order reconciler', () => {
  it('starts every other orphan when one cannot be started, and retries that one later', async () => {
    const tenant = await system.newTenant();
    const refs = ['orphan-a', 'orphan-b', 'orphan-c'];
    await storeOrphans(tenant, refs);
    const attempts: string[] = [];
    const reconciler = reconcilerStarting(async (order) => {
      if (order.tenantId !== tenant.tenantId) return startIt(order);
      attempts.push(order.orderRef);
      if (order.orderRef === 'orphan-a') throw new Error('this one cannot start');
      return startIt(order);
    });
    await reconciler.runOnce();
    expect(attempts.sort()).toEqual(refs);
    const stored = await system.orm.em
      .fork()
      .find(PaymentOrder, { tenantId: tenant.tenantId }, { orderBy: { orderRef: 'asc' } });
    expect(stored.map((o) => [o.orderRef, o.workflowStartedAt !== null])).toEqual([
      ['orphan-a', false],
      ['orphan-b', true],
      ['orphan-c', true],
    ]);
    await system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'orphan-b')).describe();

    // The failed one waits out its backoff whichever worker looks next, then starts.
    attempts.length = 0;
    await reconcilerStarting(async (order) => {
      if (order.tenantId === tenant.tenantId) attempts.push(order.orderRef);
      return startIt(order);
    }).runOnce();
    expect(attempts).toEqual([]);
    await system.orm.em
      .fork()
      .nativeUpdate(
        PaymentOrder,
        { tenantId: tenant.tenantId, orderRef: 'orphan-a' },
        { startClaimedUntil: new Date(Date.now() - 60_000) },
      );
    await reconcilerStarting(async (order) => {
      if (order.tenantId === tenant.tenantId) attempts.push(order.orderRef);
      return startIt(order);
    }).runOnce();
    expect(attempts).toEqual(['orphan-a']);
  });

  it('starts each orphan once when two workers reconcile at the same time', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(
      tenant,
      Array.from({ length: 60 }, (_, i) => `shared-${i}`),
    );
    const tries = new Map<string, number>();
    const worker = () =>
      reconcilerStarting(async (order) => {
        if (order.tenantId === tenant.tenantId) tries.set(order.orderRef, (tries.get(order.orderRef) ?? 0) + 1);
        await startIt(order);
      });
    await Promise.all([worker().runOnce(), worker().runOnce()]);
    expect(tries.size).toBe(60);
    expect([...tries.values()].filter((n) => n > 1)).toEqual([]);
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });

  it('drains a backlog of more than a page in one round, several starts at once', async () => {
    const tenant = await system.newTenant();
    // Orders taken while Temporal was away (due long after this test).
    await storeOrphans(
      tenant,
      Array.from({ length: 150 }, (_, i) => `backlog-${i}`),
    );
    let underWay = 0;
    let mostAtOnce = 0;
    const reconciler = reconcilerStarting(async (order) => {
      underWay += 1;
      mostAtOnce = Math.max(mostAtOnce, underWay);
      try {
        await startIt(order);
      } finally {
        underWay -= 1;
      }
    });
    expect(await reconciler.runOnce()).toBeGreaterThanOrEqual(150);
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(8);
  });
  it('ends its round at the first start Temporal cannot answer, logs the outage once, and starts the orders when it answers', async () => {
    const tenant = await system.newTenant();
    const refs = Array.from({ length: 30 }, (_, i) => `outage-${i}`);
    await storeOrphans(tenant, refs);
    // Nothing listens on port 1: each start is refused until its deadline, and so is the question whether Temporal answers.
    const unreachable = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }), namespace: 'default' });
    let temporalAway = true;
    // The worker's client, its Temporal away until the test brings it back.
    const client = new Proxy(system.client, {
      get: (reachable, key) => Reflect.get(temporalAway ? unreachable : reachable, key),
    });
    const tried: string[] = [];
    const { reconciler, messages } = reconcilerLogging(
      async (order) => {
        if (order.tenantId !== tenant.tenantId) return startIt(order);
        tried.push(order.orderRef);
        return startOrder(client, system.orm, order);
      },
      { client },
    );
    try {
      await reconciler.runOnce();
      await reconciler.runOnce();
      // The first round stops beginning starts once one finds Temporal away (at most the 8 under way);
      // the second asks whether it answers and tries none.
      expect(tried.length).toBeGreaterThan(0);
      expect(tried.length).toBeLessThanOrEqual(8);
      expect(messages().filter((m) => m.startsWith('Temporal is unreachable'))).toHaveLength(1);
      expect(messages().filter((m) => m.startsWith('could not start workflow'))).toEqual([]);
      // None of them is held back for it: every claim is let go.
      expect(
        await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, startClaimedUntil: { $ne: null } }),
      ).toBe(0);

      temporalAway = false;
      await reconciler.runOnce();
      expect(
        await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null }),
      ).toBe(0);
      expect(messages().filter((m) => m.startsWith('Temporal answers again'))).toHaveLength(1);
    } finally {
      await unreachable.connection.close();
    }
  });

  it('lets go of the orders it has not begun when its worker stops, for the next worker to start at once', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(
      tenant,
      Array.from({ length: 20 }, (_, i) => `stopping-${i}`),
    );
    const stopping = new AbortController();
    await reconcilerStarting(async (order) => {
      if (order.tenantId === tenant.tenantId) stopping.abort();
      return startIt(order);
    }).runOnce(stopping.signal);
    const orders = await system.orm.em.fork().find(PaymentOrder, { tenantId: tenant.tenantId });
    const begun = orders.filter((o) => o.workflowStartedAt != null);
    expect(begun.length).toBeGreaterThan(0);
    expect(begun.length).toBeLessThan(20);
    expect(orders.filter((o) => o.workflowStartedAt == null && o.startClaimedUntil != null)).toEqual([]);
    // The next worker's round starts them (and leaves no orphan to the tests after).
    await reconcilerStarting(startIt).runOnce();
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });

  it('lets go of, and holds back, only what its page claimed, not what another worker took once its claim ran out', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(
      tenant,
      Array.from({ length: 20 }, (_, i) => `outlasted-${i}`),
    );
    const ours = (order: PaymentOrder) => order.tenantId === tenant.tenantId;
    let releaseOther!: () => void;
    const otherMayStart = new Promise<void>((resolve) => (releaseOther = resolve));
    let otherClaimed!: () => void;
    const otherHasClaimed = new Promise<void>((resolve) => (otherClaimed = resolve));
    // The other worker, one start at a time (a claim of about 9 minutes), claims the page once the
    // first page's claim ran out, and starts nothing until told.
    const other = reconcilerStarting(
      async (order) => {
        if (ours(order)) {
          otherClaimed();
          await otherMayStart;
        }
        return startIt(order);
      },
      { startsAtOnce: 1 },
    );
    let otherRound: Promise<number> | undefined;
    const stopping = new AbortController();
    // The first worker, one start at a time, outlasts its claim at its first start, which then fails,
    // and stops: it holds back that one and lets go of the 19 it did not begin, under its own claim.
    const { reconciler: first, messages } = reconcilerLogging(
      async (order) => {
        if (!ours(order)) return startIt(order);
        if (!otherRound) {
          await system.orm.em
            .fork()
            .nativeUpdate(
              PaymentOrder,
              { tenantId: tenant.tenantId },
              { startClaimedUntil: new Date(Date.now() - 60_000) },
            );
          otherRound = other.runOnce();
          await Promise.race([
            otherHasClaimed,
            otherRound.then(() => Promise.reject(new Error('the other worker never claimed these orders'))),
          ]);
          stopping.abort();
        }
        throw new Error('this one cannot start');
      },
      { startsAtOnce: 1 },
    );
    try {
      await first.runOnce(stopping.signal);
      expect(otherRound).toBeDefined();
      // Every order is still the other worker's, claimed for minutes (not a minute's hold-back, not let
      // go): a third worker would not start it again.
      const orders = await system.orm.em.fork().find(PaymentOrder, { tenantId: tenant.tenantId });
      expect(orders.filter((o) => o.workflowStartedAt == null)).toHaveLength(20);
      expect(
        orders.filter((o) => !((o.startClaimedUntil?.getTime() ?? 0) > Date.now() + 5 * 60_000)).map((o) => o.orderRef),
      ).toEqual([]);
      expect(messages().filter((m) => m.endsWith('it was started, or another worker took it, since'))).toHaveLength(1);
      expect(messages().filter((m) => m.endsWith('will retry in a minute'))).toEqual([]);
    } finally {
      releaseOther();
      await otherRound?.catch(() => undefined);
    }
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });

  it('claims a page for longer than its starts can take, one at a time or several', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(tenant, ['claimed-one', 'claimed-two']);
    // How long each claim had left when its start began, by how many starts the reconciler runs at once.
    const left = async (startsAtOnce?: number) => {
      const leftMs: number[] = [];
      await reconcilerStarting(
        async (order) => {
          if (order.tenantId === tenant.tenantId) leftMs.push(order.startClaimedUntil!.getTime() - Date.now());
          // Not started: the orders stay orphans for the next reconciler.
          if (order.tenantId !== tenant.tenantId) return startIt(order);
        },
        { startsAtOnce },
      ).runOnce();
      await system.orm.em.fork().nativeUpdate(PaymentOrder, { tenantId: tenant.tenantId }, { startClaimedUntil: null });
      expect(leftMs).toHaveLength(2);
      return leftMs;
    };
    // 100 orders a page: 13 deadlines of 5 s at 8 at once, 50 at 2 at once; then the question (2 s) and a minute.
    const within = (leftMs: number[], from: number, to: number) =>
      expect(
        leftMs.filter((ms) => ms <= from || ms > to),
        `${leftMs.join(', ')} ms left`,
      ).toEqual([]);
    within(await left(), 100_000, 127_000);
    within(await left(2), 280_000, 312_000);
    await reconcilerStarting(startIt).runOnce();
  });

  it('lets go of a page it could not read, for the next round', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(tenant, ['unread']);
    // A page read that fails (a statement timeout on its instructions); every other statement runs.
    const failingRead = new Proxy(system.orm, {
      get: (orm, key) =>
        key !== 'em'
          ? Reflect.get(orm, key)
          : new Proxy(orm.em, {
              get: (em, emKey) =>
                emKey !== 'fork'
                  ? Reflect.get(em, emKey)
                  : () =>
                      new Proxy(em.fork(), {
                        get: (fork, forkKey) =>
                          forkKey === 'find'
                            ? () => Promise.reject(new Error('canceling statement due to statement timeout'))
                            : Reflect.get(fork, forkKey),
                      }),
            }),
    });
    await expect(reconcilerStarting(startIt, { orm: failingRead }).runOnce()).rejects.toThrow('statement timeout');
    expect(
      await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, startClaimedUntil: { $ne: null } }),
    ).toBe(0);
    await reconcilerStarting(startIt).runOnce();
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });

  it('takes an error answer to its question (an older server) as Temporal answering', async () => {
    const tenant = await system.newTenant();
    await storeOrphans(tenant, ['asked-older-server']);
    const unimplemented = Object.assign(new Error('12 UNIMPLEMENTED: unknown method GetSystemInfo'), {
      code: GrpcStatus.UNIMPLEMENTED,
      details: 'unknown method GetSystemInfo',
      metadata: new Metadata(),
    });
    const workflowService = new Proxy(system.client.workflowService, {
      get: (service, key) =>
        key === 'getSystemInfo' ? () => Promise.reject(unimplemented) : Reflect.get(service, key),
    });
    const client = new Proxy(system.client, {
      get: (real, key) => (key === 'workflowService' ? workflowService : Reflect.get(real, key)),
    });
    const { reconciler, messages } = reconcilerLogging(
      async (order) => {
        if (order.tenantId !== tenant.tenantId) return startIt(order);
        throw timedOutStart();
      },
      { client },
    );
    await reconciler.runOnce();
    expect(messages().filter((m) => m.startsWith('Temporal is unreachable'))).toEqual([]);
    expect(messages().filter((m) => m.startsWith('could not start workflow'))).toHaveLength(1);
    const [order] = await system.orm.em.fork().find(PaymentOrder, { tenantId: tenant.tenantId });
    // Held back a minute, not left to its page's claim (about two).
    expect(order.startClaimedUntil!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(order.startClaimedUntil!.getTime()).toBeLessThan(Date.now() + 90_000);
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { id: order.id }, { startClaimedUntil: null });
    await reconcilerStarting(startIt).runOnce();
  });

  it('takes one start that times out while Temporal answers as that order’s failure, and starts the others in the round', async () => {
    const tenant = await system.newTenant();
    // Stored before the others of its tenant: its start is among the first under way.
    await storeOrphans(tenant, ['too-slow']);
    await storeOrphans(
      tenant,
      Array.from({ length: 30 }, (_, i) => `in-time-${i}`),
    );
    const { reconciler, messages } = reconcilerLogging(
      async (order) => {
        if (order.orderRef !== 'too-slow') return startIt(order);
        throw timedOutStart();
      },
      { startsAtOnce: 2 },
    );
    await reconciler.runOnce();
    const unstarted = await system.orm.em
      .fork()
      .find(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null });
    expect(unstarted.map((o) => o.orderRef)).toEqual(['too-slow']);
    // It waits its minute from its failure, not its page's claim (about five minutes at 2 at once).
    expect(unstarted[0].startClaimedUntil!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(unstarted[0].startClaimedUntil!.getTime()).toBeLessThan(Date.now() + 90_000);
    expect(messages().filter((m) => m.startsWith('Temporal is unreachable'))).toEqual([]);
    expect(messages().filter((m) => m.startsWith('could not start workflow'))).toHaveLength(1);
    // Once it can start, it does (and leaves no orphan to the tests after).
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { id: unstarted[0].id }, { startClaimedUntil: null });
    await reconcilerStarting(startIt).runOnce();
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });

  it('stops a page whose starts time out while Temporal’s frontend answers, holding those back and saying so once', async () => {
    const tenant = await system.newTenant();
    // The counts below need a page of this tenant's orders alone: what earlier files left is started first.
    await reconcilerStarting(startIt).runOnce();
    expect(
      await system.orm.em.fork().count(PaymentOrder, { workflowStartedAt: null }),
      'no other orphan in the lane may share the page',
    ).toBe(0);
    await storeOrphans(
      tenant,
      Array.from({ length: 12 }, (_, i) => `history-away-${i}`),
    );
    const { reconciler: stalled, messages } = reconcilerLogging(async (order) => {
      if (order.tenantId !== tenant.tenantId) return startIt(order);
      throw timedOutStart();
    });
    const heldBack = async () =>
      (await system.orm.em.fork().find(PaymentOrder, { tenantId: tenant.tenantId, startClaimedUntil: { $ne: null } }))
        .length;
    await stalled.runOnce();
    expect(
      messages().filter((m) => m.startsWith('starts of orphaned orders fail as if Temporal were away')),
    ).toHaveLength(1);
    expect(messages().filter((m) => m.startsWith('Temporal is unreachable'))).toEqual([]);
    expect(messages().filter((m) => m.startsWith('could not start workflow'))).toEqual([]);
    // The 8 under way failed and wait their minute; the page began no more, and let those go.
    expect(await heldBack()).toBe(8);
    // The next round takes the 4 let go (not the 8 held back), as it would take others.
    await stalled.runOnce();
    expect(await heldBack()).toBe(12);
    expect(
      messages().filter((m) => m.startsWith('starts of orphaned orders fail as if Temporal were away')),
    ).toHaveLength(2);

    // Once they can start, they do.
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { tenantId: tenant.tenantId }, { startClaimedUntil: null });
    await reconcilerStarting(startIt).runOnce();
    expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null })).toBe(
      0,
    );
  });
});

describe('projection versions', () => {
  it('let a reset workflow run project over what the earlier run projected', async () => {
    const tenant = await system.newTenant();
    const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
    // No instrument: the instruction goes LATE at its due date and stays there.
    const res = await createOrder(tenant, 'reset-1', [
      instruction('a', { openDate: soon(0), dueDate: soon(1), financialInstrumentId: undefined }),
    ]);
    expect(res.status).toBe(202);
    const readLate = () =>
      tenant.client.request('GET', '/v1/order-management/reset-1').then((r) => r.body.instructions[0]);
    const firstRun = await eventually(readLate, (i) => i.status === 'LATE', { what: 'instruction LATE' });

    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'reset-1'));
    const { runId } = await handle.describe();
    // The read model can show LATE from a local write before the task that made it has completed.
    const history = await eventually(
      () => handle.fetchHistory(),
      (h) => h.events!.some((e) => e.workflowTaskCompletedEventAttributes),
      { what: 'a workflow task completed' },
    );
    const firstTaskCompleted = history.events!.find((e) => e.workflowTaskCompletedEventAttributes)!.eventId!;
    await system.client.workflowService.resetWorkflowExecution({
      namespace: 'default',
      workflowExecution: { workflowId: handle.workflowId, runId },
      workflowTaskFinishEventId: firstTaskCompleted,
      requestId: randomUUID(),
      reason: 'test: a new run must project over the old one',
    });
    // The new run goes through the same steps later: its projections must win over the earlier run's.
    const secondRun = await eventually(readLate, (i) => i.status === 'LATE' && i.lateAt !== firstRun.lateAt, {
      what: 'the new run to project',
    });
    expect(Date.parse(secondRun.lateAt)).toBeGreaterThan(Date.parse(firstRun.lateAt));
  });
});
