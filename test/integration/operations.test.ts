// Operations (README "Operations"): Prometheus metrics of requests, payments, provider calls and
// webhooks; instruction search across orders; the settlement export, streamed.
import { randomUUID } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { MikroORM } from '@mikro-orm/postgresql';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../db/orm.js';
import { bootstrapAccount } from '../../api/auth/bootstrap-account.js';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { setUpFirstTenant } from '../../scripts/first-tenant.js';
import { PaymentInstruction, PaymentOrder, PaymentSettlement } from '../../db/entities/index.js';
import { createProjectOrder } from '../../orders/activities/project-order.js';
import { instructionFromRow } from '../../orders/read-model.js';
import { SETTLEMENT_COLUMNS } from '../../orders/instruction-search.js';
import { cardPaymentSettled } from '../support/card-payments.js';
import { eventually } from '../support/eventually.js';
import { freshDatabase } from '../support/fresh-database.js';
import { insertInstructionRows } from '../support/instruction-rows.js';
import { metricValue } from '../support/prometheus-text.js';
import { holdTable } from '../support/row-hold.js';
import { lane } from '../support/lanes.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

let system: TestSystem;
let tenant: TenantFixture;

beforeAll(async () => {
  system = await startSystem();
  tenant = await system.newTenant();
});
afterAll(async () => {
  await system?.close();
});

async function scrape(baseUrl = system.api.url, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

const order = (orderRef: string, instructions: Record<string, unknown>[], customerRef?: string) => ({
  orderRef,
  ...(customerRef ? { customerRef } : {}),
  instructions: instructions.map((overrides, n) => ({
    instructionRef: `i${n + 1}`,
    direction: 'DEBIT',
    amount: '10.00',
    currency: 'EUR',
    country: 'FR',
    openDate: '2031-01-01',
    dueDate: '2031-01-02',
    financialInstrumentId: 'card_visa_4242',
    ...overrides,
  })),
});

const settledOrder = (orderRef: string) => cardPaymentSettled(system, tenant, orderRef);

describe('metrics', () => {
  it('count and time requests by the route as declared, never by the address asked or the tenant', async () => {
    const before = (await scrape()).text;
    for (let i = 0; i < 2; i++)
      expect((await tenant.client.request('GET', '/v1/order-management/no-such-order')).status).toBe(404);
    expect((await tenant.client.request('GET', '/v1/instructions?limit=5')).status).toBe(200);
    expect((await tenant.client.request('GET', '/v1/no-such-route')).status).toBe(404);
    const { status, type, text } = await scrape();
    expect(status).toBe(200);
    expect(type).toContain('text/plain');
    const delta = (name: string, labels: Record<string, string>) =>
      metricValue(text, name, labels) - metricValue(before, name, labels);
    expect(
      delta('http_requests_total', { route: '/v1/order-management/:orderRef', method: 'GET', status: '404' }),
    ).toBe(2);
    expect(delta('http_request_duration_seconds_count', { route: '/v1/instructions', method: 'GET' })).toBe(1);
    expect(delta('http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(
      1,
    );
    // No series per order or tenant.
    for (const identifying of ['no-such-order', 'no-such-route', tenant.tenantId])
      expect(text).not.toContain(identifying);
    // Scrapes are not request log lines.
    expect(system.logLines.filter((line) => line.includes('"url":"/metrics"'))).toEqual([]);
  });

  it.skipIf(inject('databasePoolSize') === 1)(
    'tell whether the APIs hear row changes (and so keep keys, tenants and schemes), and when one does not',
    async () => {
      const listening = async () => metricValue((await scrape()).text, 'api_row_changes_listening', {});
      await eventually(listening, (value) => value === 1, { what: 'the API listening' });
      // A second API whose database for row changes cannot be reached: nothing is kept there.
      const deaf = await system.startApi({ rowChangesUrl: 'postgres://postgres@127.0.0.1:1/unreachable' });
      try {
        expect(await listening()).toBe(0);
      } finally {
        await deaf.close();
      }
      expect(await listening()).toBe(1);
    },
  );

  it('answer only a scraper holding METRICS_TOKEN when one is set', async () => {
    const api = await system.startApi({ settings: { metricsToken: 'scrape-secret' } });
    try {
      const refused = await scrape(api.url);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.text)).toMatchObject({ code: 'unauthenticated' });
      expect((await scrape(api.url, { authorization: 'Bearer scrape-secreT' })).status).toBe(401);
      const allowed = await scrape(api.url, { authorization: 'Bearer scrape-secret' });
      expect(allowed.status).toBe(200);
      expect(allowed.text).toContain('# TYPE http_requests_total counter');
    } finally {
      await api.close();
    }
  });

  it('count each status an instruction enters once, and time the provider’s answers', async () => {
    const labels = (status: string) => ({ direction: 'DEBIT', app: 'SANDBOX_CARD', status });
    const before = (await scrape()).text;
    const row = await settledOrder('metrics-paid');
    const after = await eventually(
      async () => (await scrape()).text,
      (text) =>
        metricValue(text, 'payment_instructions_total', labels('SETTLED')) >
        metricValue(before, 'payment_instructions_total', labels('SETTLED')),
      { what: 'the settlement counted' },
    );
    for (const status of ['OPEN', 'PROCESSING', 'SETTLED'])
      expect(
        metricValue(after, 'payment_instructions_total', labels(status)) -
          metricValue(before, 'payment_instructions_total', labels(status)),
        status,
      ).toBe(1);
    const calls = { app: 'SANDBOX_CARD', outcome: 'settled' };
    expect(
      metricValue(after, 'payment_provider_call_seconds_count', calls) -
        metricValue(before, 'payment_provider_call_seconds_count', calls),
    ).toBe(1);
    expect(metricValue(after, 'payment_provider_call_seconds_sum', calls)).toBeGreaterThan(
      metricValue(before, 'payment_provider_call_seconds_sum', calls),
    );

    // A projection tried again records nothing new, and counts nothing new.
    const orderRow = await system.orm.em
      .fork()
      .findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'metrics-paid' });
    const projection = {
      tenantId: tenant.tenantId,
      orderId: orderRow.id,
      orderRef: 'metrics-paid',
      version: '1',
      status: 'COMPLETED' as const,
      instructions: [],
      events: [
        {
          eventKey: `test:${randomUUID()}`,
          type: 'instruction.failed' as const,
          occurredAt: new Date().toISOString(),
          instruction: { ...instructionFromRow(row), status: 'FAILED' as const },
        },
        // A return told as the instruction stands after it (failed at once): counted as the return it tells.
        {
          eventKey: `test:${randomUUID()}`,
          type: 'instruction.returned' as const,
          occurredAt: new Date().toISOString(),
          instruction: { ...instructionFromRow(row), status: 'FAILED' as const },
        },
      ],
    };
    const project = createProjectOrder(system.orm);
    // As a worker runs it: its attempt's time bounds its statements.
    const activity = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    const counted = async () => {
      const text = (await scrape()).text;
      return ['FAILED', 'RETURNED'].map((status) => metricValue(text, 'payment_instructions_total', labels(status)));
    };
    const [failedBefore, returnedBefore] = await counted();
    await activity.run(project, projection);
    await activity.run(project, projection);
    const [failed, returned] = await counted();
    expect([failed - failedBefore, returned - returnedBefore]).toEqual([1, 1]);
  });

  it('gauge what falls due within the hour and the day, what is late, and the webhook backlog, across tenants', async () => {
    const db = await freshDatabase();
    let orm: MikroORM | undefined;
    let api: Awaited<ReturnType<TestSystem['startApi']>> | undefined;
    try {
      orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
      const [a, b] = [randomUUID(), randomUUID()];
      // Due in 1…50 minutes (tenant a), in 1.5…30.5 hours (tenant b), late, paid, and one overdue still open.
      await insertInstructionRows(orm, {
        tenantId: a,
        prefix: 'soon-',
        count: 50,
        status: 'OPEN',
        dueAt: `now() + n * interval '1 minute'`,
      });
      await insertInstructionRows(orm, {
        tenantId: b,
        prefix: 'later-',
        count: 30,
        status: 'PENDING',
        dueAt: `now() + (n + 0.5) * interval '1 hour'`,
      });
      await insertInstructionRows(orm, {
        tenantId: a,
        prefix: 'late-',
        count: 7,
        status: 'LATE',
        dueAt: `now() - n * interval '1 day'`,
      });
      await insertInstructionRows(orm, {
        tenantId: b,
        prefix: 'paid-',
        count: 5,
        status: 'SETTLED',
        dueAt: `now() + interval '5 minutes'`,
        settledAt: 'now()',
      });
      await insertInstructionRows(orm, {
        tenantId: b,
        prefix: 'overdue-',
        count: 1,
        status: 'OPEN',
        dueAt: `now() - interval '1 minute'`,
      });
      api = await system.startApi({ orm });
      const { text } = await scrape(api.url);
      expect(metricValue(text, 'payment_instructions_due', { window: '1h' })).toBe(51);
      // 50 + the overdue one + tenant b's due within 24 hours (1.5…23.5).
      expect(metricValue(text, 'payment_instructions_due', { window: '24h' })).toBe(51 + 23);
      expect(metricValue(text, 'payment_instructions_late')).toBe(7);
      expect(metricValue(text, 'webhook_deliveries_pending')).toBe(0);
    } finally {
      await api?.close();
      await orm?.close();
      await db.drop();
    }
  });
});

describe('instruction search', () => {
  it('finds instructions across orders by status, due date, customer, direction and currency, a page at a time', async () => {
    const searcher = await system.newTenant();
    const create = async (body: unknown) =>
      expect((await searcher.client.request('POST', '/v1/order-management', { body })).status).toBe(202);
    await create(order('s-1', [{ dueDate: '2031-03-10' }, { dueDate: '2031-03-20' }], 'ada'));
    await create(order('s-2', [{ dueDate: '2031-03-15' }, { dueDate: '2031-04-15' }], 'bob'));
    await create(order('s-3', [{ dueDate: '2031-03-05', amount: '7.00' }], 'ada'));
    const search = async (query: string) => {
      const res = await searcher.client.request('GET', `/v1/instructions?${query}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as {
        items: { orderRef: string; instructionRef: string; dueDate: string }[];
        nextCursor: string | null;
      };
    };
    const refs = (page: { items: { orderRef: string; instructionRef: string }[] }) =>
      page.items.map((i) => `${i.orderRef}/${i.instructionRef}`);
    await eventually(
      () => search(''),
      (page) => page.items.length === 5,
      { what: 'five instructions projected' },
    );

    // Latest due date first, across orders, each with its order's reference.
    expect(refs(await search(''))).toEqual(['s-2/i2', 's-1/i2', 's-2/i1', 's-1/i1', 's-3/i1']);
    expect(refs(await search('dueFrom=2031-03-10T00:00:00Z&dueTo=2031-03-20T00:00:00Z'))).toEqual(['s-2/i1', 's-1/i1']);
    expect(refs(await search('customerRef=ada'))).toEqual(['s-1/i2', 's-1/i1', 's-3/i1']);
    expect(refs(await search('status=PENDING&customerRef=bob&currency=EUR&direction=DEBIT'))).toEqual([
      's-2/i2',
      's-2/i1',
    ]);
    expect(refs(await search('status=SETTLED'))).toEqual([]);
    expect(refs(await search('direction=CREDIT'))).toEqual([]);
    expect(refs(await search('currency=GBP'))).toEqual([]);
    expect(refs(await search('appId=SANDBOX_BANK'))).toEqual([]);

    // Pages: two at a time, none twice, none missed.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await search(`limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...refs(page));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['s-2/i2', 's-1/i2', 's-2/i1', 's-1/i1', 's-3/i1']);

    for (const [query, path, code] of [
      ['dueFrom=yesterday', 'query.dueFrom', undefined],
      ['status=SOMETIME', 'query.status', undefined],
      ['settledTo=1999-12-31T00:00:00Z', 'query.settledTo', 'out_of_range'],
      ['orderRef=s-1', 'query.orderRef', undefined],
    ] as const) {
      const res = await searcher.client.request('GET', `/v1/instructions?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors[0].path, query).toBe(path);
      if (code) expect(res.body.errors[0].code).toBe(code);
    }
  });

  // A session of an embedded PGlite waits for no lock: nothing to cut there.
  it.skipIf(inject('databasePoolSize') === 1)(
    'cuts a search page that takes longer than SEARCH_TIMEOUT_SECONDS; the next page answers',
    async () => {
      const hurried = await system.startApi({ settings: { searchTimeoutSeconds: 1 } });
      try {
        const client = tenant.clientAt(hurried.url);
        // Held by other work (a migration, say): the page waits, as a page reading much of a tenant's rows would.
        const held = await holdTable(lane().databaseUrl, 'payment_instruction');
        try {
          const cut = await client.request('GET', '/v1/instructions?appId=SANDBOX_CARD');
          expect(cut.status).toBe(503);
          expect(cut.body).toMatchObject({ code: 'search_timed_out' });
          expect(cut.headers.get('retry-after')).toBe('60');
        } finally {
          await held.release();
        }
        expect((await client.request('GET', '/v1/instructions?appId=SANDBOX_CARD')).status).toBe(200);
      } finally {
        await hurried.close();
      }
    },
  );

  it('finds what settled in a period, latest settlement first; orders list by when they were created', async () => {
    const paid = await settledOrder('search-paid');
    const from = new Date(paid.settledAt!.getTime() - 60_000).toISOString();
    const to = new Date(paid.settledAt!.getTime() + 60_000).toISOString();
    const found = await tenant.client.request('GET', `/v1/instructions?settledFrom=${from}&settledTo=${to}`);
    expect(found.body.items.map((i: { orderRef: string }) => i.orderRef)).toContain('search-paid');
    expect(found.body.items.every((i: { status: string }) => i.status === 'SETTLED' || i.status === 'RETURNED')).toBe(
      true,
    );
    const before = await tenant.client.request('GET', `/v1/instructions?settledTo=${from}`);
    expect(before.body.items.map((i: { orderRef: string }) => i.orderRef)).not.toContain('search-paid');

    const created = (await tenant.client.request('GET', '/v1/order-management/search-paid')).body.createdAt as string;
    const since = await tenant.client.request('GET', `/v1/order-management?createdFrom=${encodeURIComponent(created)}`);
    expect(since.body.items.map((o: { orderRef: string }) => o.orderRef)).toContain('search-paid');
    const until = await tenant.client.request('GET', `/v1/order-management?createdTo=${encodeURIComponent(created)}`);
    expect(until.body.items.map((o: { orderRef: string }) => o.orderRef)).not.toContain('search-paid');
  });
});

describe('the settlement export', () => {
  it('gives every settlement of a period with its provider reference, as CSV or JSON lines', async () => {
    const paid = await settledOrder('export-paid');
    const period = `from=${new Date(paid.settledAt!.getTime() - 1000).toISOString()}&to=${new Date(paid.settledAt!.getTime() + 1000).toISOString()}`;
    const csv = await tenant.client.send('GET', `/v1/exports/settlements?${period}`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="settlements-.*\.csv"$/);
    const [header, ...lines] = (await csv.text()).trimEnd().split('\n');
    expect(header).toBe(SETTLEMENT_COLUMNS.join(','));
    const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [SETTLEMENT_COLUMNS[i], v])));
    const row = rows.find((r) => r.orderRef === 'export-paid');
    expect(row).toMatchObject({
      instructionRef: 'i1',
      instructionId: paid.instructionId,
      direction: 'DEBIT',
      status: 'SETTLED',
      appId: 'SANDBOX_CARD',
      paymentMethod: 'CARD',
      providerRef: paid.providerRef,
      currency: 'EUR',
      amount: '10.00',
      settledAmount: '10.00',
      refundedAmount: '0.00',
      returnedAmount: '0.00',
      settledAt: paid.settledAt!.toISOString(),
    });
    expect(paid.providerRef).toBeTruthy();

    const json = await tenant.client.send('GET', `/v1/exports/settlements?${period}`, {
      headers: { accept: 'application/x-ndjson' },
    });
    expect(json.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const records = (await json.text())
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.find((r) => r.orderRef === 'export-paid')).toEqual({ ...row, customerRef: null, returnCode: null });
    // Listed once, and still listed as of its last settlement when that has no row of its own (projected
    // by a worker of the code before the rows, during the deploy that brought them).
    const listed = async () =>
      (await (await tenant.client.send('GET', `/v1/exports/settlements?${period}`)).text())
        .split('\n')
        .filter((line) => line.includes('export-paid'));
    expect(await listed()).toHaveLength(1);
    await system.orm.em.fork().nativeDelete(PaymentSettlement, { instructionId: paid.instructionId });
    expect(await listed()).toEqual([lines.find((line) => line.includes('export-paid'))]);

    const empty = await tenant.client.request(
      'GET',
      `/v1/exports/settlements?from=2031-01-02T00:00:00Z&to=2031-01-01T00:00:00Z`,
    );
    expect(empty.status).toBe(400);
    expect(empty.body.errors).toEqual([expect.objectContaining({ path: 'query.to', code: 'before_from' })]);
  });

  it('lists each settlement of an instruction collected again in its own period, with what that payment took', async () => {
    const first = await cardPaymentSettled(system, tenant, 'export-twice', '10.00', {
      card: 'card_chargeback',
      until: (row) => row.status === 'FAILED' && row.returnedAt != null,
    });
    const retried = await tenant.client.request('POST', '/v1/order-management/export-twice/instructions/i1/retry', {
      body: { financialInstrumentId: 'card_ok', dueDate: new Date(Date.now() + 86_400_000).toISOString() },
    });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const cut = await tenant.client.request('PATCH', '/v1/order-management/export-twice/instructions/i1', {
      body: { amount: '6.00' },
    });
    expect(cut.status, JSON.stringify(cut.body)).toBe(200);
    const paid = await tenant.client.request('POST', '/v1/order-management/export-twice/instructions/i1/pay', {
      body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok', amount: '6.00' },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(202);
    const again = await eventually(
      () =>
        system.orm.em
          .fork()
          .findOneOrFail(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef: 'export-twice' } }),
      (row) => row.status === 'SETTLED' && row.providerRef !== first.providerRef,
      { what: 'paid again, for the new amount' },
    );
    const exported = async (from: Date, to: Date) => {
      const res = await tenant.client.send(
        'GET',
        `/v1/exports/settlements?from=${from.toISOString()}&to=${to.toISOString()}`,
        { headers: { accept: 'application/x-ndjson' } },
      );
      expect(res.status).toBe(200);
      return (await res.text())
        .trimEnd()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((row) => row.orderRef === 'export-twice');
    };
    const totals = { status: 'SETTLED', settledAmount: '16.00', returnedAmount: '10.00' };
    // The first period, exported after the second payment: its settlement is still there, as it was.
    expect(
      await exported(new Date(first.settledAt!.getTime() - 1000), new Date(first.settledAt!.getTime() + 1)),
    ).toEqual([
      expect.objectContaining({
        settledAt: first.settledAt!.toISOString(),
        providerRef: first.providerRef,
        amount: '10.00',
        ...totals,
      }),
    ]);
    expect(
      await exported(new Date(first.settledAt!.getTime() - 1000), new Date(again.settledAt!.getTime() + 1000)),
    ).toEqual([
      expect.objectContaining({ providerRef: first.providerRef, amount: '10.00', ...totals }),
      expect.objectContaining({
        settledAt: again.settledAt!.toISOString(),
        providerRef: again.providerRef,
        amount: '6.00',
        ...totals,
      }),
    ]);

    // A projection tried again records its settlement once.
    const orderRow = await system.orm.em
      .fork()
      .findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'export-twice' });
    const eventKey = `test:${randomUUID()}`;
    const projection = {
      tenantId: tenant.tenantId,
      orderId: orderRow.id,
      orderRef: 'export-twice',
      version: '1',
      status: 'COMPLETED' as const,
      instructions: [],
      events: [
        {
          eventKey,
          type: 'instruction.settled' as const,
          occurredAt: new Date().toISOString(),
          instruction: instructionFromRow(again),
        },
      ],
    };
    const activity = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    await activity.run(createProjectOrder(system.orm), projection);
    await activity.run(createProjectOrder(system.orm), projection);
    expect(await system.orm.em.fork().count(PaymentSettlement, { tenantId: tenant.tenantId, eventKey })).toBe(1);
  });

  // Exports held open side by side, each on a connection of its own: an embedded PGlite has one.
  it.skipIf(inject('databasePoolSize') === 1)(
    'streams 100,000 settlements in constant memory',
    async () => {
      // Where the test stands, said only if it is still running after a minute (it takes seconds).
      const progress = { phase: 'inserting', lines: 0, bytes: 0, startedAt: Date.now() };
      const watchdog = setInterval(
        () =>
          console.error(
            `settlement export test after ${Math.round((Date.now() - progress.startedAt) / 1000)} s:`,
            progress,
          ),
        60_000,
      );
      // A database of its own: 100,000 rows written beside the other files' rows once waited minutes in CI.
      const db = await freshDatabase();
      const orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
      const api = await system.startApi({ orm });
      const first = await setUpFirstTenant(api.url, await bootstrapAccount(orm, system.masterKeys));
      const big = {
        tenantId: first.tenantId,
        client: new PaymentSchedulerClient({ baseUrl: api.url, ...first }),
      };
      const count = 100_000;
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      try {
        await insertInstructionRows(orm, {
          tenantId: big.tenantId,
          prefix: 'bulk-',
          count,
          status: 'SETTLED',
          dueAt: `'2027-03-01T00:00:00Z'::timestamptz + n * interval '1 second'`,
          settledAt: `'2027-03-01T00:00:00Z'::timestamptz + n * interval '1 second'`,
        });
        progress.phase = 'analyzing';
        await orm.em.getConnection().execute('analyze payment_order, payment_instruction');
        // What the export holds while it runs: the heap after a full collection, half-way through the file.
        v8.setFlagsFromString('--expose-gc');
        const gc = vm.runInNewContext('gc') as () => void;
        gc();
        const heapAtStart = process.memoryUsage().heapUsed;
        let heldMidway = Number.NaN;
        progress.phase = 'asking';
        const res = await big.client.send(
          'GET',
          '/v1/exports/settlements?from=2027-03-01T00:00:00Z&to=2027-03-03T00:00:00Z',
        );
        expect(res.status).toBe(200);
        progress.phase = 'reading';
        let last = '';
        const decoder = new TextDecoder();
        reader = res.body!.getReader();
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
          const text = decoder.decode(chunk.value, { stream: true });
          progress.bytes += chunk.value.byteLength;
          const before = progress.lines;
          progress.lines += text.split('\n').length - 1;
          last = (last + text).slice(-200);
          if (before < count / 2 && progress.lines >= count / 2) {
            gc();
            heldMidway = process.memoryUsage().heapUsed - heapAtStart;
          }
        }
        reader = undefined;
        progress.phase = 'checking';
        expect(progress.lines).toBe(count + 1);
        // The last settlement, last: ordered by settlement date.
        expect(last.trimEnd().split('\n').at(-1)).toMatch(/^2027-03-02T03:46:40\.000Z,bulk-100000,/);
        // The file is ~15 MB, its rows as objects several times that: the export holds a few batches of them.
        expect(progress.bytes).toBeGreaterThan(10_000_000);
        expect(heldMidway).toBeLessThan(16 * 1024 * 1024);

        // An export holds a connection while its client reads; the tenant's next waits its turn (and
        // other tenants' take the process's other slot: test/unit/tenant-slots.test.ts).
        progress.phase = 'abandoning';
        const path = '/v1/exports/settlements?from=2027-03-01T00:00:00Z&to=2027-03-03T00:00:00Z';
        const held = [await big.client.send('GET', path)];
        const second = await big.client.send('GET', path);
        expect(second.status).toBe(503);
        expect(second.headers.get('retry-after')).toBe('10');
        expect(await second.json()).toMatchObject({ code: 'exports_busy', detail: expect.stringMatching(/of yours/) });
        // Their clients go away after a first chunk: each query ends and its connection is back, once.
        for (const abandoned of held) {
          const partial = abandoned.body!.getReader();
          await partial.read();
          await partial.cancel();
        }
        const pool = (orm.em.getKnex().client as { pool: { numUsed(): number; numFree(): number } }).pool;
        await eventually(
          () => Promise.resolve(pool.numUsed()),
          (used) => used === 0,
          { what: 'the abandoned exports’ connections back in the pool' },
        );
        const after = await big.client.send(
          'GET',
          '/v1/exports/settlements?from=2027-03-01T00:00:00Z&to=2027-03-01T00:00:10Z',
        );
        expect((await after.text()).trimEnd().split('\n')).toHaveLength(10);

        // A client that stops reading, and stays, has its export ended once it has read nothing for
        // EXPORT_STALL_SECONDS: its connection goes back, and the tenant may export again.
        progress.phase = 'stalling';
        const impatient = await system.startApi({ orm, settings: { exportStallSeconds: 1 } });
        try {
          const stalling = new PaymentSchedulerClient({ baseUrl: impatient.url, ...first });
          const tenSeconds = '/v1/exports/settlements?from=2027-03-01T00:00:00Z&to=2027-03-01T00:00:10Z';
          // Time the query takes to find its first row is not the client's (PostgreSQL sorting a long
          // period once took CI past a second): an export kept waiting, here on a lock, twice the
          // stall time still answers in full.
          progress.phase = 'waiting for the first row';
          const held = await holdTable(db.url, 'payment_settlement');
          try {
            const slow = stalling.send('GET', tenSeconds);
            await eventually(
              () => held.waiting('%payment_settlement%'),
              (n) => n > 0,
              { what: 'the export waiting for the lock' },
            );
            // Twice the stall time: before this rule, the export was cut after one second of it.
            await new Promise((resolve) => setTimeout(resolve, 2_000));
            await held.release();
            const answered = await slow;
            expect(answered.status).toBe(200);
            expect((await answered.text()).trimEnd().split('\n')).toHaveLength(10);
          } finally {
            await held.release();
          }
          // But not for ever: a query that waits EXPORT_LOCK_WAIT_SECONDS for a lock is given up, and says so.
          progress.phase = 'query cut';
          const hurried = await system.startApi({ orm, settings: { exportLockWaitSeconds: 1 } });
          try {
            const client = new PaymentSchedulerClient({ baseUrl: hurried.url, ...first });
            const heldLonger = await holdTable(db.url, 'payment_settlement');
            try {
              const cut = await client.send('GET', tenSeconds);
              expect(cut.status).toBe(503);
              expect(cut.headers.get('retry-after')).toBe('60');
              expect(cut.headers.get('content-disposition')).toBeNull();
              expect(await cut.json()).toMatchObject({ code: 'export_timed_out' });
            } finally {
              await heldLonger.release();
            }
            await eventually(
              () => Promise.resolve(pool.numUsed()),
              (used) => used === 0,
              { what: 'the cut export’s connection back in the pool' },
            );
            expect((await (await client.send('GET', tenSeconds)).text()).trimEnd().split('\n')).toHaveLength(10);
          } finally {
            await hurried.close();
          }
          progress.phase = 'stalling';
          const stalled = await stalling.send('GET', path);
          expect(stalled.status).toBe(200);
          await stalled.body!.getReader().read();
          await eventually(
            () => Promise.resolve(pool.numUsed()),
            (used) => used === 0,
            { what: 'the stalled export’s connection back in the pool' },
          );
          const again = await stalling.send('GET', tenSeconds);
          expect((await again.text()).trimEnd().split('\n')).toHaveLength(10);
        } finally {
          await impatient.close();
        }

        // A query lost mid-file (its server process ended) cuts the download at once, long before the
        // stall time: never a file that ends as if whole, nor one left open with its slot and connection.
        progress.phase = 'lost mid-file';
        const watchful = await system.startApi({ orm, settings: { exportStallSeconds: 3600 } });
        const cutShort = await new PaymentSchedulerClient({ baseUrl: watchful.url, ...first }).send('GET', path);
        expect(cutShort.status).toBe(200);
        const partial = cutShort.body!.getReader();
        await partial.read();
        const sql = orm.em.getConnection();
        const exporting = await sql.execute<{ pid: number }[]>(
          `select pid from pg_stat_activity where datname = current_database() and query like '%payment_settlement%'
             and pid <> pg_backend_pid()`,
        );
        expect(exporting).toHaveLength(1);
        await sql.execute('select pg_terminate_backend(?)', [exporting[0].pid]);
        const readToEnd = async () => {
          for (let chunk = await partial.read(); !chunk.done; chunk = await partial.read());
        };
        try {
          await expect(readToEnd()).rejects.toThrow();
          await eventually(
            () => Promise.resolve(pool.numUsed()),
            (used) => used === 0,
            { what: 'the lost export’s connection given back' },
          );
        } finally {
          await watchful.close();
        }
      } finally {
        clearInterval(watchdog);
        // A reading cut short ends the export's query (its connection back in the pool) before the rows go.
        await reader?.cancel().catch(() => undefined);
        await api.close();
        await orm.close();
        await db.drop();
      }
    },
    180_000,
  );
});
