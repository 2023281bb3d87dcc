import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOrder } from '../../orders/order-plans.js';
import { bootstrapAccount } from '../../api/auth/bootstrap-account.js';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { openDatabase } from '../../db/orm.js';
import { setUpFirstTenant } from '../../scripts/first-tenant.js';
import { PaymentOrder, Tenant } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { StartMarks } from '../../orders/start-order.js';
import { eventually } from '../support/eventually.js';
import { freshDatabase } from '../support/fresh-database.js';
import { insertInstructionRows } from '../support/instruction-rows.js';
import { holdTable } from '../support/row-hold.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { resolvedTo } from '../support/tenant-rows.js';

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

interface CallOptions {
  tenant?: TenantFixture;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

async function call(method: string, path: string, { tenant, body, rawBody, headers = {} }: CallOptions = {}) {
  const res = await fetch(`${system.api.url}${path}`, {
    method,
    headers: {
      ...(tenant
        ? { authorization: `Bearer ${await tenant.client.accessToken()}`, 'x-tenant-id': tenant.tenantId }
        : {}),
      ...(body !== undefined || rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

function secondsFromNow(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}

function instruction(ref: string, overrides: Record<string, unknown> = {}) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '25.50',
    currency: 'EUR',
    country: 'IE',
    openDate: secondsFromNow(1),
    dueDate: secondsFromNow(2),
    financialInstrumentId: 'card_visa_4242',
    ...overrides,
  };
}

async function countOrders(tenant: TenantFixture): Promise<number> {
  return system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId });
}

function waitForOrder(tenant: TenantFixture, orderRef: string, done: (order: any) => boolean, what: string) {
  return eventually(async () => (await call('GET', `/v1/order-management/${orderRef}`, { tenant })).body, done, {
    what,
    timeoutMs: 45_000,
  });
}

describe('an order end to end over HTTP', () => {
  it('opens, collects and settles every instruction on its dates, visible through GET', async () => {
    const tenant = await system.newTenant();
    const created = await call('POST', '/v1/order-management', {
      tenant,
      body: {
        orderRef: 'policy-100',
        customerRef: 'cust-1',
        metadata: { policy: 'P-100' },
        instructions: [
          instruction('premium-1', { openDate: secondsFromNow(1), dueDate: secondsFromNow(3) }),
          instruction('premium-2', {
            amount: '10',
            currency: 'JPY',
            country: 'JP',
            openDate: secondsFromNow(2),
            dueDate: secondsFromNow(4),
          }),
        ],
      },
    });
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('ACTIVE');
    expect(created.body.workflowId).toBe(orderWorkflowId(tenant.tenantId, 'policy-100'));
    expect(created.body.instructions.map((i: any) => [i.instructionRef, i.status, i.amount])).toEqual([
      ['premium-1', 'PENDING', '25.50'],
      ['premium-2', 'PENDING', '10'],
    ]);

    const order = await waitForOrder(tenant, 'policy-100', (o) => o.status === 'COMPLETED', 'order COMPLETED');
    for (const i of order.instructions) {
      expect(i.status).toBe('SETTLED');
      expect(i.attempts).toBe(1);
      expect(i.appId).toBe('SANDBOX_CARD');
      expect(i.paymentMethod).toBe('CARD');
      expect(i.providerRef).toMatch(/^sbx_/);
      // Each step happened no earlier than its date, and in order.
      expect(Date.parse(i.openedAt)).toBeGreaterThanOrEqual(Date.parse(i.openDate));
      expect(Date.parse(i.processingAt)).toBeGreaterThanOrEqual(Date.parse(i.dueDate));
      expect(Date.parse(i.settledAt)).toBeGreaterThanOrEqual(Date.parse(i.processingAt));
    }

    // Exactly one payment per instruction reached the provider, in minor units, with the attempt's key.
    const payments = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'policy-100' });
    expect(payments.map((p) => [p.idempotencyKey, p.amountMinor, p.status]).sort()).toEqual([
      [`${tenant.tenantId}:policy-100:premium-1:1`, '2550', 'SETTLED'],
      [`${tenant.tenantId}:policy-100:premium-2:1`, '10', 'SETTLED'],
    ]);

    // Operators find the order in Temporal by its search attributes.
    // Shown with the completion of the workflow task whose local write the read model was read from, just after it.
    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'policy-100'));
    const description = await eventually(
      () => handle.describe(),
      (d) => d.searchAttributes.OrderStatus?.[0] === 'COMPLETED',
      { what: 'the order COMPLETED in Temporal', timeoutMs: 15_000 },
    );
    expect(description.searchAttributes.TenantId).toEqual([tenant.tenantId]);
    expect(description.searchAttributes.OrderRef).toEqual(['policy-100']);
    expect(description.searchAttributes.OrderStatus).toEqual(['COMPLETED']);
    // And read what the order moved, per currency, in its memo (minor units).
    expect(description.memo?.totals).toEqual({
      EUR: { collected: '2550', refunded: '0', returned: '0', netCollected: '2550', paidOut: '0', outstanding: '0' },
      JPY: { collected: '10', refunded: '0', returned: '0', netCollected: '10', paidOut: '0', outstanding: '0' },
    });
    expect(description.memo?.instructionCounts).toEqual({ SETTLED: 2 });
  });

  it('fails a declined collection at once when the decline cannot succeed on retry', async () => {
    const tenant = await system.newTenant();
    const created = await call('POST', '/v1/order-management', {
      tenant,
      body: { orderRef: 'declined-1', instructions: [instruction('only', { financialInstrumentId: 'card_declined' })] },
    });
    expect(created.status).toBe(202);
    // Its only instruction failed: the order says so, never COMPLETED.
    const order = await waitForOrder(
      tenant,
      'declined-1',
      (o) => o.status === 'COMPLETED_WITH_FAILURES',
      'declined order to finish',
    );
    expect(order.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'do_not_honor', attempts: 1 });
    expect(order.instructions[0].failedAt).not.toBeNull();
  });

  it('retries a provider 5xx with the same idempotency key, so the customer pays once', async () => {
    const tenant = await system.newTenant();
    await call('POST', '/v1/order-management', {
      tenant,
      body: { orderRef: 'flaky-1', instructions: [instruction('only', { financialInstrumentId: 'card_flaky' })] },
    });
    const order = await waitForOrder(tenant, 'flaky-1', (o) => o.status === 'COMPLETED', 'flaky order to settle');
    expect(order.instructions[0].status).toBe('SETTLED');
    const payments = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'flaky-1' });
    expect(payments).toHaveLength(1);
  });

  it('starts the workflow of an order stored by an API that crashed before starting it', async () => {
    const tenant = await system.newTenant();
    const em = system.orm.em.fork();
    // What a crash between the insert and the start leaves behind: the row, no workflow.
    const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
    buildOrder(em, tenantRow, { orderRef: 'orphan-1', instructions: [instruction('only') as any] }, [
      resolvedTo('SANDBOX_CARD', 'CARD'),
    ]);
    await em.flush();
    await expect(
      system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'orphan-1')).describe(),
    ).rejects.toThrow();

    await system.reconciler.runOnce();
    const order = await waitForOrder(tenant, 'orphan-1', (o) => o.status === 'COMPLETED', 'orphan order to settle');
    expect(order.instructions[0].status).toBe('SETTLED');
    const stored = await system.orm.em
      .fork()
      .findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'orphan-1' });
    expect(stored.workflowStartedAt).toBeInstanceOf(Date);
  });
});

describe('reading an order', () => {
  it('answers it as one view of the read model: a projection committed between its reads shows whole or not at all', async () => {
    // A database of its own: its instructions' table is locked whole for a moment.
    const db = await freshDatabase();
    const orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
    const api = await system.startApi({ orm });
    try {
      const first = await setUpFirstTenant(api.url, await bootstrapAccount(orm, system.masterKeys));
      const client = new PaymentSchedulerClient({ baseUrl: api.url, ...first });
      await insertInstructionRows(orm, {
        tenantId: first.tenantId,
        prefix: 'one-view-',
        count: 1,
        status: 'PROCESSING',
        dueAt: `now()`,
      });
      // The order is read, then its instructions wait; meanwhile a projection settles them and completes it.
      const held = await holdTable(db.url, 'payment_instruction');
      try {
        const reading = client.request('GET', '/v1/order-management/one-view-1');
        const listing = client.request('GET', '/v1/order-management');
        await eventually(
          () => held.waiting('%payment_instruction%'),
          (n) => n === 2,
          { what: 'the reads of the instructions waiting (the order’s, and the list’s counts)' },
        );
        await held.query(`update payment_instruction set status = 'SETTLED', settled_at = now() where tenant_id = $1`, [
          first.tenantId,
        ]);
        await held.query(`update payment_order set status = 'COMPLETED' where tenant_id = $1`, [first.tenantId]);
        await held.commit();
        const read = await reading;
        expect(read.status).toBe(200);
        expect([read.body.status, read.body.instructions[0].status]).toEqual(['ACTIVE', 'PROCESSING']);
        const list = await listing;
        expect(list.status).toBe(200);
        expect(list.body.items).toMatchObject([
          { status: 'ACTIVE', instructionSummary: { byStatus: { PROCESSING: 1 } } },
        ]);
      } finally {
        await held.release();
      }
      const after = await client.request('GET', '/v1/order-management/one-view-1');
      expect([after.body.status, after.body.instructions[0].status]).toEqual(['COMPLETED', 'SETTLED']);
    } finally {
      await api.close();
      await orm.close();
      await db.drop();
    }
  });
});

describe('marking orders started', () => {
  it('marks the orders started about then in one go, when their moment comes or the API stops', async () => {
    const tenant = await system.newTenant();
    const em = system.orm.em.fork();
    const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
    const orders = ['mark-1', 'mark-2', 'mark-3'].map((orderRef) =>
      buildOrder(em, tenantRow, { orderRef, instructions: [instruction('only') as any] }, [
        resolvedTo('SANDBOX_CARD', 'CARD'),
      ]),
    );
    await em.flush();
    const marked = async () =>
      (await system.orm.em.fork().find(PaymentOrder, { tenantId: tenant.tenantId }, { orderBy: { orderRef: 'asc' } }))
        .filter((o) => o.workflowStartedAt !== null)
        .map((o) => o.orderRef);

    const stopping = new StartMarks(system.orm, 3_600_000);
    stopping.add(orders[0].id);
    stopping.add(orders[1].id);
    expect(await marked()).toEqual([]);
    await stopping.flush();
    expect(await marked()).toEqual(['mark-1', 'mark-2']);

    const timed = new StartMarks(system.orm, 10);
    timed.add(orders[2].id);
    await eventually(marked, (refs) => refs.length === 3, { what: 'the third order to be marked' });
  });
});

describe('when Temporal is down', () => {
  it('still takes the order, and the worker starts its workflow once Temporal answers', async () => {
    const tenant = await system.newTenant();
    // An API whose Temporal connection leads nowhere: the start fails after the order is stored.
    const deadConnection = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
    const cutOff = await system.startApi({ temporal: new Client({ connection: deadConnection }) });
    try {
      const asTenant = tenant.clientAt(cutOff.url);
      const res = await asTenant.request('POST', '/v1/order-management', {
        body: { orderRef: 'outage-1', instructions: [instruction('only')] },
      });
      expect(res.status).toBe(202);
      const stored = await system.orm.em
        .fork()
        .findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'outage-1' });
      expect(stored.workflowStartedAt).toBeNull();
    } finally {
      await cutOff.close();
      await deadConnection.close().catch(() => undefined);
    }

    expect(await system.reconciler.runOnce()).toBeGreaterThanOrEqual(1);
    const order = await waitForOrder(
      tenant,
      'outage-1',
      (o) => o.status === 'COMPLETED',
      'order taken during the outage to settle',
    );
    expect(order.instructions[0].status).toBe('SETTLED');
  });
});

describe('creating orders', () => {
  it('answers 400 naming every field at fault, and writes nothing', async () => {
    const tenant = await system.newTenant();
    const res = await call('POST', '/v1/order-management', {
      tenant,
      body: {
        orderRef: 'bad ref!',
        instructions: [
          instruction('a', { amount: '1.005' }),
          instruction('b', { amount: 12.5, currency: 'EURO', country: 'XX' }),
          instruction('a', { openDate: '2027-02-30', dueDate: '2027-01-01' }),
          instruction('c', { openDate: '2027-03-02', dueDate: '2027-03-01', surprise: true }),
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, code: 'validation_failed' });
    const byPath = Object.fromEntries(res.body.errors.map((e: any) => [e.path, e.code]));
    expect(byPath).toMatchObject({
      orderRef: 'invalid_format',
      'instructions[0].amount': 'invalid_amount_precision',
      'instructions[1].amount': 'invalid_type',
      'instructions[1].currency': 'invalid_currency',
      'instructions[1].country': 'invalid_country',
      'instructions[2].openDate': 'invalid_date',
      'instructions[2].instructionRef': 'duplicate_instruction_ref',
      'instructions[3].dueDate': 'due_before_open',
      'instructions[3].surprise': 'unknown_field',
    });
    expect(await countOrders(tenant)).toBe(0);
  });

  it('rejects a body that is not JSON, or too large, in the same error format', async () => {
    const tenant = await system.newTenant();
    const malformed = await call('POST', '/v1/order-management', { tenant, rawBody: '{"orderRef": ' });
    expect(malformed).toMatchObject({ status: 400, body: { code: 'malformed_json' } });
    const huge = await call('POST', '/v1/order-management', {
      tenant,
      rawBody: JSON.stringify({ pad: 'x'.repeat(1_100_000) }),
    });
    expect(huge).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
    const notJson = await call('POST', '/v1/order-management', {
      tenant,
      rawBody: 'orderRef=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(notJson).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
    const array = await call('POST', '/v1/order-management', { tenant, rawBody: '[1, 2]' });
    expect(array).toMatchObject({ status: 400, body: { errors: [{ path: 'body', code: 'invalid_type' }] } });
    expect(await countOrders(tenant)).toBe(0);
  });

  it('answers an order sent again as stored, 409 for its orderRef with other contents, and keeps the first order', async () => {
    const tenant = await system.newTenant();
    const body = {
      orderRef: 'dup-1',
      instructions: [instruction('a', { openDate: '2030-01-01', dueDate: '2030-01-02' })],
    };
    const first = await call('POST', '/v1/order-management', { tenant, body });
    expect(first.status).toBe(202);
    // A retry after a lost answer, with no Idempotency-Key: the stored order, not taken again.
    const resent = await call('POST', '/v1/order-management', { tenant, body });
    expect(resent, JSON.stringify(resent.body)).toMatchObject({
      status: 200,
      body: { orderId: first.body.orderId, orderRef: 'dup-1', instructions: [{ instructionRef: 'a' }] },
    });
    // Sent twice at once: stored once, and both answered with it.
    const twice = { ...body, orderRef: 'dup-2' };
    const both = await Promise.all([1, 2].map(() => call('POST', '/v1/order-management', { tenant, body: twice })));
    expect(both.map((r) => r.status).sort()).toEqual([200, 202]);
    expect(both[0].body.orderId).toBe(both[1].body.orderId);
    const again = await call('POST', '/v1/order-management', {
      tenant,
      body: { ...body, instructions: [instruction('b', { openDate: '2030-01-01', dueDate: '2030-01-02' })] },
    });
    expect(again).toMatchObject({ status: 409, body: { code: 'order_ref_conflict', errors: [{ path: 'orderRef' }] } });
    expect(await countOrders(tenant)).toBe(2);
    const stored = await call('GET', '/v1/order-management/dup-1', { tenant });
    expect(stored.body.instructions.map((i: any) => i.instructionRef)).toEqual(['a']);
    // Another tenant may use the same orderRef, and cannot see this one.
    const other = await system.newTenant();
    expect((await call('GET', '/v1/order-management/dup-1', { tenant: other })).status).toBe(404);
    expect((await call('POST', '/v1/order-management', { tenant: other, body })).status).toBe(202);
  });

  it('replays the first answer for a repeated Idempotency-Key and refuses the key with another body', async () => {
    const tenant = await system.newTenant();
    const body = {
      orderRef: 'idem-1',
      instructions: [instruction('a', { openDate: '2030-01-01', dueDate: '2030-01-02' })],
    };
    const headers = { 'idempotency-key': `key-${randomUUID()}` };
    const first = await call('POST', '/v1/order-management', { tenant, body, headers });
    const second = await call('POST', '/v1/order-management', { tenant, body, headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body.orderId).toBe(first.body.orderId);
    expect(await countOrders(tenant)).toBe(1);

    const changed = await call('POST', '/v1/order-management', {
      tenant,
      body: { ...body, orderRef: 'idem-2' },
      headers,
    });
    expect(changed).toMatchObject({ status: 422, body: { code: 'idempotency_key_reused' } });
    expect(await countOrders(tenant)).toBe(1);
  });
});

describe('taking orders in a batch', () => {
  const later = (ref: string) => instruction(ref, { openDate: '2030-01-01', dueDate: '2030-01-02' });

  it('takes each order on its own: the good ones taken and started, a bad one refused alone, a taken orderRef not taken twice', async () => {
    const tenant = await system.newTenant();
    const existing = await call('POST', '/v1/order-management', {
      tenant,
      body: { orderRef: 'batch-old', instructions: [later('a')] },
    });
    expect(existing.status).toBe(202);
    const other = await call('POST', '/v1/order-management', {
      tenant,
      body: { orderRef: 'batch-changed', instructions: [later('a')] },
    });
    expect(other.status).toBe(202);
    const orders = [
      { orderRef: 'batch-1', instructions: [later('a'), later('b')] },
      { orderRef: 'batch-2', instructions: [later('a'), { ...later('b'), amount: '-3.00' }] },
      // The same order, its fields in another order and its amount (25.50) with one decimal less: the one taken.
      { instructions: [{ ...later('a'), amount: '25.5' }], orderRef: 'batch-old' },
      { orderRef: 'batch-1', instructions: [later('c')] },
      { orderRef: 'batch-3', instructions: [later('a')], schemeId: 'not-a-field' },
      { orderRef: 'batch-4', instructions: [later('a')] },
      // Another order under a taken ref (a corrected one, say): not taken, and not mistaken for it.
      { orderRef: 'batch-changed', instructions: [later('z')] },
      // Well formed, but refused by the order service (no such scheme): named as in the batch too.
      { orderRef: 'batch-5', instructions: [{ ...later('a'), schemeId: randomUUID() }] },
      // Named again in the batch, each after the one before it, as if sent again alone: the same order
      // is the one taken; under the ref of one refused, nothing is stored, so another order is taken.
      { orderRef: 'batch-4', instructions: [later('a')] },
      { orderRef: 'batch-5', instructions: [later('a')] },
    ];
    const res = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ taken: 3, alreadyTaken: 2, refused: 5 });
    expect(res.body.results.map((r: any) => [r.index, r.orderRef, r.status])).toEqual([
      [0, 'batch-1', 202],
      [1, 'batch-2', 400],
      [2, 'batch-old', 200],
      [3, 'batch-1', 409],
      [4, 'batch-3', 400],
      [5, 'batch-4', 202],
      [6, 'batch-changed', 409],
      [7, 'batch-5', 400],
      [8, 'batch-4', 200],
      [9, 'batch-5', 202],
    ]);
    expect(res.body.results[8].orderId).toBe(res.body.results[5].orderId);
    const [, bad, old, twice, unknown, , changed, noScheme] = res.body.results;
    expect(noScheme.problem).toMatchObject({
      errors: [{ path: 'orders[7].instructions[0].schemeId', code: 'scheme_not_found' }],
    });
    expect(changed.problem).toMatchObject({
      code: 'order_ref_conflict',
      errors: [{ path: 'orders[6].orderRef', code: 'duplicate' }],
    });
    expect(changed.problem.detail).toMatch(/created from other contents/);
    expect(bad.problem.code).toBe('validation_failed');
    expect(new Set(bad.problem.errors.map((e: any) => e.path))).toEqual(new Set(['orders[1].instructions[1].amount']));
    expect(old.orderId).toBe(existing.body.orderId);
    expect(twice.problem).toMatchObject({ code: 'order_ref_conflict', errors: [{ path: 'orders[3].orderRef' }] });
    expect(twice.problem.detail).toMatch(/created from other contents/);
    expect(unknown.problem).toMatchObject({ errors: [{ path: 'orders[4].schemeId', code: 'unknown_field' }] });

    // The taken ones are stored with their instructions and their workflows run; the refused ones left nothing.
    expect(await countOrders(tenant)).toBe(5);
    for (const orderRef of ['batch-1', 'batch-4', 'batch-5']) {
      const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, orderRef));
      expect((await handle.describe()).status.name).toBe('RUNNING');
    }
    const first = await call('GET', '/v1/order-management/batch-1', { tenant });
    expect(first.body.instructions.map((i: any) => i.instructionRef)).toEqual(['a', 'b']);
    for (const orderRef of ['batch-old', 'batch-changed']) {
      const kept = await call('GET', `/v1/order-management/${orderRef}`, { tenant });
      expect(kept.body.instructions.map((i: any) => i.instructionRef)).toEqual(['a']);
    }

    // Sent again (an answer lost on the way): nothing is taken twice, and each order taken is named by the same id.
    const again = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
    expect(again.body).toMatchObject({ taken: 0, alreadyTaken: 5, refused: 5 });
    expect(again.body.results[0]).toMatchObject({ status: 200, orderId: res.body.results[0].orderId });
    expect(again.body.results[5]).toMatchObject({ status: 200, orderId: res.body.results[5].orderId });
    expect(again.body.results[9]).toMatchObject({ status: 200, orderId: res.body.results[9].orderId });
    // The order refused for its scheme now meets the one taken under its ref since, as alone it would.
    expect(again.body.results[7]).toMatchObject({ status: 409, problem: { code: 'order_ref_conflict' } });
    expect(await countOrders(tenant)).toBe(5);
  });

  it('answers an order sent again as taken, in a batch or alone, even when a check it passed then fails now (its scheme deleted since)', async () => {
    const tenant = await system.newTenant();
    const scheme = await call('POST', '/v1/schemes/collect', {
      tenant,
      body: {
        name: 'for one order',
        rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
      },
    });
    expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
    const orders = [{ orderRef: 'batch-gone', instructions: [{ ...later('a'), schemeId: scheme.body.schemeId }] }];
    const first = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
    expect(first.body.results[0]).toMatchObject({ status: 202 });
    // Its instruction cancelled, the scheme may go; the order, sent again, is still the one taken.
    const cancelled = await call('POST', '/v1/order-management/batch-gone/cancel', { tenant });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const deleted = await call('DELETE', `/v1/schemes/collect/${scheme.body.schemeId}`, { tenant });
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
    const again = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
    expect(again.body).toMatchObject({ taken: 0, alreadyTaken: 1, refused: 0 });
    expect(again.body.results[0]).toMatchObject({ status: 200, orderId: first.body.results[0].orderId });
    const alone = await call('POST', '/v1/order-management', { tenant, body: orders[0] });
    expect(alone, JSON.stringify(alone.body)).toMatchObject({
      status: 200,
      body: { orderId: first.body.results[0].orderId },
    });
    // Another order under that ref is refused as another order, whatever else it fails.
    const other = [{ orderRef: 'batch-gone', instructions: [{ ...later('b'), schemeId: scheme.body.schemeId }] }];
    const refused = await call('POST', '/v1/order-management/batch', { tenant, body: { orders: other } });
    expect(refused.body.results[0]).toMatchObject({
      status: 409,
      problem: { code: 'order_ref_conflict', errors: [{ path: 'orders[0].orderRef' }] },
    });
    const otherAlone = await call('POST', '/v1/order-management', { tenant, body: other[0] });
    expect(otherAlone).toMatchObject({ status: 409, body: { code: 'order_ref_conflict' } });
  });

  it('refuses an order holding a card or bank account number alone, naming it by its place, and repeats the number nowhere', async () => {
    const tenant = await system.newTenant();
    const card = '4242424242424242';
    const orders = [
      { orderRef: 'held-1', instructions: [later('a')] },
      { orderRef: 'held-2', instructions: [{ ...later('a'), financialInstrumentId: `card ${card}` }] },
      // A reference that is a card number: the result does not repeat it.
      { orderRef: card, instructions: [later('a')] },
      { orderRef: 'held-3', instructions: [later('a')], metadata: { iban: 'DE89 3704 0044 0532 0130 00' } },
      // A number as a field's name: the answer (kept under the Idempotency-Key) names the object holding it.
      { orderRef: 'held-5', instructions: [later('a')], metadata: { [card]: 'x' } },
      { orderRef: 'held-4', instructions: [later('a')] },
    ];
    const headers = { 'idempotency-key': 'batch-with-a-card' };
    const res = await call('POST', '/v1/order-management/batch', { tenant, body: { orders }, headers });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ taken: 2, alreadyTaken: 0, refused: 4 });
    expect(
      res.body.results.map((r: any) => [r.index, r.orderRef, r.status, r.problem?.code, r.problem?.errors?.[0]?.path]),
    ).toEqual([
      [0, 'held-1', 202, undefined, undefined],
      [1, undefined, 400, 'card_number_not_allowed', 'orders[1].instructions[0].financialInstrumentId'],
      [2, undefined, 400, 'card_number_not_allowed', 'orders[2].orderRef'],
      [3, undefined, 400, 'bank_account_number_not_allowed', 'orders[3].metadata.iban'],
      [4, undefined, 400, 'card_number_not_allowed', 'orders[4].metadata'],
      [5, 'held-4', 202, undefined, undefined],
    ]);
    // Whole or in the groups a person would copy; a UUID in the answer may hold "4242" by chance.
    expect(JSON.stringify(res.body)).not.toMatch(/42424242|DE89|3704 0044/);
    expect(await countOrders(tenant)).toBe(2);
    // Sent again under its key: the same answer, replayed.
    const again = await call('POST', '/v1/order-management/batch', { tenant, body: { orders }, headers });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(res.body);
    // Outside the orders, a card number still refuses the whole batch.
    const whole = await call('POST', '/v1/order-management/batch', {
      tenant,
      body: { orders: [{ orderRef: 'held-6', instructions: [later('a')] }], note: card },
    });
    expect(whole).toMatchObject({ status: 400, body: { code: 'card_number_not_allowed', errors: [{ path: 'note' }] } });
    expect(await countOrders(tenant)).toBe(2);
    // The route with a trailing slash, or in other letters (Express matches paths whatever their
    // case), is the same route: the order holding the number is refused alone.
    for (const [path, orderRef, stored] of [
      ['/v1/order-management/batch/', 'held-7', 3],
      ['/v1/order-management/BATCH', 'held-8', 4],
    ] as const) {
      const res = await call('POST', path, {
        tenant,
        body: { orders: [orders[1], { orderRef, instructions: [later('a')] }] },
      });
      expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body.results.map((r: any) => r.status)).toEqual([400, 202]);
      expect(await countOrders(tenant)).toBe(stored);
    }
  });

  it('refuses an entry that is not an order, not even an object, alone', async () => {
    const tenant = await system.newTenant();
    const orders = [42, null, 'not-an-order', [], { orderRef: 'among-others', instructions: [later('a')] }];
    const res = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ taken: 1, alreadyTaken: 0, refused: 4 });
    expect(
      res.body.results.map((r: any) => [r.index, r.orderRef, r.status, r.problem?.code, r.problem?.errors?.[0]?.path]),
    ).toEqual([
      [0, undefined, 400, 'validation_failed', 'orders[0]'],
      [1, undefined, 400, 'validation_failed', 'orders[1]'],
      [2, undefined, 400, 'validation_failed', 'orders[2]'],
      [3, undefined, 400, 'validation_failed', 'orders[3]'],
      [4, 'among-others', 202, undefined, undefined],
    ]);
    expect(await countOrders(tenant)).toBe(1);
  });

  it('refuses an empty batch or one over 1,000 orders as a whole, taking nothing', async () => {
    const tenant = await system.newTenant();
    const tooMany = Array.from({ length: 1001 }, (_, n) => ({ orderRef: `big-${n}`, instructions: [later('a')] }));
    for (const orders of [[], tooMany]) {
      const res = await call('POST', '/v1/order-management/batch', { tenant, body: { orders } });
      expect(res).toMatchObject({ status: 400, body: { code: 'validation_failed', errors: [{ path: 'orders' }] } });
    }
    expect(await countOrders(tenant)).toBe(0);
  });

  it('reads a batch larger than any other body may be', async () => {
    const small = await system.startApi({ settings: { bodyLimit: '4kb' } });
    try {
      const tenant = await system.newTenant();
      const post = async (path: string, body: unknown) =>
        (
          await fetch(`${small.url}${path}`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${await tenant.client.accessToken()}`,
              'x-tenant-id': tenant.tenantId,
              'content-type': 'application/json',
            },
            body: JSON.stringify(body),
          })
        ).status;
      const orders = Array.from({ length: 20 }, (_, n) => ({ orderRef: `wide-${n}`, instructions: [later('a')] }));
      expect(JSON.stringify({ orders }).length).toBeGreaterThan(4096);
      expect(await post('/v1/order-management/batch', { orders })).toBe(200);
      const wide = { orderRef: 'wide-one', metadata: { note: 'x'.repeat(4096) }, instructions: [later('a')] };
      expect(await post('/v1/order-management', wide)).toBe(413);
      expect(await countOrders(tenant)).toBe(20);
    } finally {
      await small.close();
    }
  });
});

describe('tenant settings', () => {
  it('reads date-only dates in the tenant’s time zone and copies its dunning schedule onto the order', async () => {
    const tenant = await system.newTenant({
      tenant: { timeZone: 'America/New_York', dunning: { retryDelaysDays: [2] } },
    });
    const res = await call('POST', '/v1/order-management', {
      tenant,
      body: { orderRef: 'tz-1', instructions: [instruction('a', { openDate: '2030-01-15', dueDate: '2030-07-01' })] },
    });
    expect(res.status).toBe(202);
    // Midnight in New York: UTC-5 in winter, UTC-4 in summer.
    expect(res.body.instructions[0]).toMatchObject({
      openDate: '2030-01-15T05:00:00.000Z',
      dueDate: '2030-07-01T04:00:00.000Z',
    });
    const stored = await system.orm.em
      .fork()
      .findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'tz-1' });
    expect(stored.dunningDelaysMs).toEqual([2 * 24 * 60 * 60 * 1000]);
    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'tz-1'));
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = JSON.parse(Buffer.from(started!.input!.payloads![0].data!).toString('utf8'));
    expect(input.dunningDelaysMs).toEqual([2 * 24 * 60 * 60 * 1000]);
  });

  it('compares a calendar date with a date-time in the tenant’s time zone: due before open is refused, after is taken', async () => {
    const newYork = await system.newTenant({ tenant: { timeZone: 'America/New_York' } });
    // Open at midnight in New York (05:00Z), due at 03:00Z the same day: two hours before it opens.
    const before = await call('POST', '/v1/order-management', {
      tenant: newYork,
      body: {
        orderRef: 'tz-before',
        instructions: [instruction('a', { openDate: '2030-01-15', dueDate: '2030-01-15T03:00:00Z' })],
      },
    });
    expect(before).toMatchObject({
      status: 400,
      body: { code: 'validation_failed', errors: [{ path: 'instructions[0].dueDate', code: 'due_before_open' }] },
    });
    expect(await countOrders(newYork)).toBe(0);
    // Open at midnight in Auckland (11:00Z the day before), due at 12:00Z that day: an hour after it opens.
    const auckland = await system.newTenant({ tenant: { timeZone: 'Pacific/Auckland' } });
    const after = await call('POST', '/v1/order-management', {
      tenant: auckland,
      body: {
        orderRef: 'tz-after',
        instructions: [instruction('a', { openDate: '2030-01-15', dueDate: '2030-01-14T12:00:00Z' })],
      },
    });
    expect(after.status, JSON.stringify(after.body)).toBe(202);
    expect(after.body.instructions[0]).toMatchObject({
      openDate: '2030-01-14T11:00:00.000Z',
      dueDate: '2030-01-14T12:00:00.000Z',
    });
    // An instruction added to a running order is compared the same way, its field named.
    const added = await call('POST', '/v1/order-management/tz-after/instructions', {
      tenant: auckland,
      body: instruction('b', { openDate: '2030-02-01', dueDate: '2030-01-31T10:00:00Z' }),
    });
    expect(added).toMatchObject({ status: 400, body: { errors: [{ path: 'dueDate', code: 'due_before_open' }] } });
  });

  it('refuses an unknown time zone', async () => {
    const account = await system.newAccount();
    const res = await account.client.request('POST', '/v1/account/tenants', {
      body: { name: 'x', timeZone: 'Mars/Olympus' },
    });
    expect(res).toMatchObject({ status: 400, body: { errors: [{ path: 'timeZone', code: 'invalid_time_zone' }] } });
  });
});

describe('reading orders', () => {
  it('lists a tenant’s orders newest first, a page at a time', async () => {
    const tenant = await system.newTenant();
    for (const ref of ['list-1', 'list-2', 'list-3']) {
      const body = {
        orderRef: ref,
        instructions: [instruction('a', { openDate: '2030-01-01', dueDate: '2030-01-02' })],
      };
      expect((await call('POST', '/v1/order-management', { tenant, body })).status).toBe(202);
    }
    const first = await call('GET', '/v1/order-management?limit=2', { tenant });
    expect(first.body.items.map((o: any) => o.orderRef)).toEqual(['list-3', 'list-2']);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await call('GET', `/v1/order-management?limit=2&cursor=${first.body.nextCursor}`, { tenant });
    expect(second.body.items.map((o: any) => o.orderRef)).toEqual(['list-1']);
    expect(second.body.nextCursor).toBeNull();
    const bad = await call('GET', '/v1/order-management?limit=1000', { tenant });
    expect(bad).toMatchObject({ status: 400, body: { errors: [{ path: 'query.limit' }] } });
  });
});

describe('operations endpoints', () => {
  it('reports readiness of the database and Temporal', async () => {
    const res = await call('GET', '/readyz');
    expect(res).toMatchObject({ status: 200, body: { status: 'ready', checks: { database: 'ok', temporal: 'ok' } } });
    expect(res.headers.get('x-request-id')).toEqual(expect.any(String));
  });

  it('publishes an OpenAPI 3.1 document generated from the request schemas, and a docs page', async () => {
    const doc = await call('GET', '/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/v1/order-management', '/v1/order-management/{orderRef}']),
    );
    // Every route of the route table is documented, with its method.
    for (const route of system.api.routes) {
      const path = `/v1${route.path.replace(/:(\w+)/g, '{$1}')}`;
      expect(doc.body.paths[path]?.[route.method], `${route.method} ${path}`).toBeDefined();
    }
    expect(doc.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const createSchema = doc.body.components.schemas.CreateOrder;
    expect(createSchema.required).toEqual(expect.arrayContaining(['orderRef', 'instructions']));
    const page = await fetch(`${system.api.url}/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui-bundle.js');
    expect((await fetch(`${system.api.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
  });
});

describe('logs', () => {
  // Last in the file: it reads what everything above logged.
  it('never contain a private key, a signature header or an access token', () => {
    expectNoSecretsInLogs(system);
  });
});
