// Reconciliation (ARCHITECTURE.md, "Reconciliation"): the provider's own ledger of a period against
// our instructions, every difference counted and the first ones kept and told; the sandbox misreports on request.
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import got from 'got';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AppConnector } from '../../apps/app-connector.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import {
  AppInstallation,
  PaymentInstruction,
  ReconciliationEntry,
  ReconciliationItem,
  ReconciliationRun,
} from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { SecretBox } from '../../db/secret-box.js';
import { Reconciliation, SHUT_DOWN_FAILURE, STOPPED_RUN_FAILURE } from '../../reconciliation/reconciliation.js';
import { compareEntries, deleteEntries } from '../../reconciliation/run-entries.js';
import { Housekeeping } from '../../worker/housekeeping.js';
import { bankDebitPaidNow } from '../support/bank-debits.js';
import { cardPaymentSettled } from '../support/card-payments.js';
import { eventually } from '../support/eventually.js';
import { freshDatabase } from '../support/fresh-database.js';
import { metricValue } from '../support/prometheus-text.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { createTenantRows } from '../support/tenant-rows.js';
import { lane } from '../support/lanes.js';

let system: TestSystem;
let tenant: TenantFixture;

beforeAll(async () => {
  system = await startSystem();
  tenant = await system.newTenant();
});
afterAll(async () => {
  await system?.close();
});

type Ledger = NonNullable<AppConnector['ledger']>;

/**
 * A reconciliation of its own on `orm`, reading the ledgers at `sandboxUrl` (the run's sandbox unless
 * told); `ledger`, given the card app's own, makes the ledger that app reads instead.
 */
const reconciliationOn = (
  orm: MikroORM,
  {
    sandboxUrl = system.sandbox.url,
    ledger,
    logger = pino({ level: 'silent' }),
    ...options
  }: {
    sandboxUrl?: string;
    retryAfterMs?: number;
    comparePage?: number;
    maxRecordedMismatches?: number;
    ledger?: (own: Ledger) => Ledger;
    logger?: pino.Logger;
  } = {},
) => {
  const apps = createAppRegistry(got, {
    sandboxUrl,
    callbackBaseUrl: system.api.url,
    outboundUrls: { allowLoopbackHttp: true },
  });
  if (ledger) {
    const card = apps.get('SANDBOX_CARD')!;
    apps.set(
      'SANDBOX_CARD',
      Object.assign(Object.create(card) as AppConnector, { ledger: ledger(card.ledger!.bind(card)) }),
    );
  }
  return new Reconciliation({
    ...options,
    orm,
    apps,
    secretBox: SecretBox.fromMasterKeys(system.masterKeys),
    logger,
  });
};

/** Runs `body` on a database of its own, migrated, dropped after: the schedule reads every installation. */
async function onFreshDatabase(body: (orm: MikroORM) => Promise<void>): Promise<void> {
  const db = await freshDatabase();
  let orm: MikroORM | undefined;
  try {
    orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
    await body(orm);
  } finally {
    await orm?.close();
    await db.drop();
  }
}

/** What another worker's dayIsFree does to a run it takes for dead: FAILED, with its reason, and the day's key freed. */
const giveUpRunsOf = (tenantId: string) =>
  system.orm.em
    .fork()
    .nativeUpdate(
      ReconciliationRun,
      { tenantId, status: 'RUNNING' },
      { status: 'FAILED', failure: STOPPED_RUN_FAILURE, scheduleKey: null, finishedAt: new Date() },
    );

/**
 * Runs `body` while `statement` (PL/pgSQL, the run's row as `new`) runs right after every beat of
 * `tenantId`'s runs: a test-only trigger, dropped after. A beat only touches a RUNNING run.
 */
async function afterEveryBeat(tenantId: string, statement: string, body: () => Promise<void>): Promise<void> {
  const sql = system.orm.em.getConnection();
  try {
    await sql.execute(`create or replace function test_after_beat() returns trigger language plpgsql as $$
      begin
        ${statement};
        return null;
      end $$`);
    await sql.execute(`create or replace trigger test_after_beat after update of heartbeat_at on reconciliation_run
      for each row when (new.tenant_id = '${tenantId}') execute function test_after_beat()`);
    await body();
  } finally {
    await sql.execute('drop trigger if exists test_after_beat on reconciliation_run');
    await sql.execute('drop function if exists test_after_beat()');
  }
}

/** An advisory lock key of this file's own, for a test to hold a run's beat where it wants it. */
const BEAT_GATE = 4719;

/** The ten minutes either side of now. */
const inTenMinutes = () => ({ from: new Date(Date.now() - 600_000), to: new Date(Date.now() + 600_000) });

const paid = (orderRef: string, amount?: string) => cardPaymentSettled(system, tenant, orderRef, amount);

const around = (minutes: number) => ({
  from: new Date(Date.now() - minutes * 60_000).toISOString(),
  to: new Date(Date.now() + minutes * 60_000).toISOString(),
});

/** A reconciliation run of the last ten minutes of `appId`, asked through the API: it succeeds; its items (up to 100). */
async function runItems(owner: TenantFixture, appId: string): Promise<unknown[]> {
  const run = await owner.client.request('POST', '/v1/reconciliation/runs', { body: { appId, ...around(10) } });
  expect(run.body.status).toBe('SUCCEEDED');
  return (await owner.client.request('GET', `/v1/reconciliation/runs/${run.body.runId}/items?limit=100`)).body.items;
}

async function misreport(body: object): Promise<{ providerRef?: string }> {
  const res = await fetch(`${system.sandbox.url}/ledger/misreport`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
  return res.status === 201 ? ((await res.json()) as { providerRef: string }) : {};
}

/** A payment of 50.00 EUR settled now in the sandbox's ledger for `owner`'s card app, which no order of ours made. */
async function phantomPayment(owner: TenantFixture): Promise<string | undefined> {
  const { providerRef } = await misreport({
    phantom: {
      apiKey: owner.sandboxApiKey,
      appId: 'SANDBOX_CARD',
      direction: 'DEBIT',
      amountMinor: '5000',
      currency: 'EUR',
      status: 'SETTLED',
      createdAt: new Date().toISOString(),
    },
  });
  return providerRef;
}

async function mismatchCount(kind: string): Promise<number> {
  const text = await (await fetch(`${system.api.url}/metrics`)).text();
  return metricValue(text, 'reconciliation_mismatches_total', { app: 'SANDBOX_CARD', kind });
}

describe('reconciliation', () => {
  it('finds nothing to say of a period where the provider and we agree', async () => {
    await paid('rec-a');
    await paid('rec-b', '12.34');
    const res = await tenant.client.request('POST', '/v1/reconciliation/runs', {
      body: { appId: 'SANDBOX_CARD', ...around(10) },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ appId: 'SANDBOX_CARD', trigger: 'REQUESTED', status: 'SUCCEEDED', mismatches: 0 });
    // Both payments, on both sides.
    expect(res.body.compared).toBe(4);
    const items = await tenant.client.request('GET', `/v1/reconciliation/runs/${res.body.runId}/items`);
    expect(items.body).toEqual({ items: [], nextCursor: null });
  });

  it('records, counts and tells a payment misreported, missing, returned or never ours', async () => {
    const amountWrong = await paid('rec-amount');
    const omitted = await paid('rec-missing');
    const returned = await paid('rec-status');
    await misreport({ providerRef: amountWrong.providerRef, amountMinor: '999' });
    await misreport({ providerRef: omitted.providerRef, omit: true });
    await misreport({ providerRef: returned.providerRef, status: 'CHARGED_BACK' });
    const phantom = await phantomPayment(tenant);
    const before = Object.fromEntries(
      await Promise.all(['amount', 'missing', 'status', 'extra'].map(async (k) => [k, await mismatchCount(k)])),
    );

    const run = await tenant.client.request('POST', '/v1/reconciliation/runs', {
      body: { appId: 'SANDBOX_CARD', ...around(10) },
    });
    expect(run.status).toBe(201);
    expect(run.body).toMatchObject({ status: 'SUCCEEDED', mismatches: 4 });
    const items = (await tenant.client.request('GET', `/v1/reconciliation/runs/${run.body.runId}/items`)).body.items;
    const byKind = Object.fromEntries(items.map((i: { kind: string }) => [i.kind, i]));
    expect(Object.keys(byKind).sort()).toEqual(['amount', 'extra', 'missing', 'status']);
    expect(byKind.amount).toMatchObject({
      providerRef: amountWrong.providerRef,
      orderRef: 'rec-amount',
      instructionRef: 'i1',
      ours: { amount: '10.00', currency: 'EUR', status: 'SETTLED' },
      theirs: { amount: '9.99', currency: 'EUR', status: 'SETTLED' },
    });
    expect(byKind.missing).toMatchObject({ providerRef: omitted.providerRef, orderRef: 'rec-missing', theirs: null });
    expect(byKind.status).toMatchObject({
      orderRef: 'rec-status',
      ours: { status: 'SETTLED' },
      theirs: { status: 'CHARGED_BACK' },
    });
    expect(byKind.extra).toMatchObject({
      providerRef: phantom,
      orderRef: null,
      ours: null,
      theirs: { amount: '50.00' },
    });

    for (const kind of ['amount', 'missing', 'status', 'extra'])
      expect(await mismatchCount(kind)).toBe(before[kind] + 1);
    const events = await eventually(
      async () =>
        (await tenant.client.request('GET', '/v1/events?limit=100')).body.items as { type: string; data?: any }[],
      (list) => list.filter((e) => e.type === 'reconciliation.mismatch').length === 4,
      { what: 'four reconciliation.mismatch events' },
    );
    expect(events.filter((e) => e.type === 'reconciliation.mismatch').length).toBe(4);

    // The run is listed, newest first; another tenant sees none of it.
    const runs = await tenant.client.request('GET', '/v1/reconciliation/runs');
    expect(runs.body.items[0]).toMatchObject({ runId: run.body.runId, mismatches: 4 });
    const other = await system.newTenant();
    expect((await other.client.request('GET', `/v1/reconciliation/runs/${run.body.runId}/items`)).status).toBe(404);
  });

  it('finds no difference in a payment charged back there and here: the instruction FAILED, its payment taken back', async () => {
    const takenBack = await cardPaymentSettled(system, tenant, 'rec-charged-back', '10.00', {
      card: 'card_chargeback',
      until: (row) => row.status === 'FAILED' && row.returnedAt != null,
    });
    const items = (await runItems(tenant, 'SANDBOX_CARD')) as { providerRef: string }[];
    expect(items.filter((i) => i.providerRef === takenBack.providerRef)).toEqual([]);
  });

  it('finds no difference in a debit returned, then cancelled before it was collected again: the returned payment keeps its reference', async () => {
    const schemeId = await tenant.bankDebitScheme();
    await bankDebitPaidNow(tenant, 'rec-returned-cancelled', { schemeId, instrument: 'bank_returned' });
    const instruction = () =>
      system.orm.em.fork().findOneOrFail(PaymentInstruction, {
        tenantId: tenant.tenantId,
        order: { orderRef: 'rec-returned-cancelled' },
      });
    const returned = await eventually(instruction, (r) => r.status === 'LATE' && r.returnedAt != null, {
      what: 'the debit returned, to be collected again',
    });
    const cancelled = await tenant.client.request(
      'POST',
      '/v1/order-management/rec-returned-cancelled/instructions/a/cancel',
    );
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const row = await eventually(instruction, (r) => r.status === 'CANCELLED', { what: 'the instruction cancelled' });
    expect([row.providerRef, row.returnedRef]).toEqual([returned.providerRef, returned.providerRef]);
    const items = (await runItems(tenant, 'SANDBOX_BANK')) as { providerRef: string }[];
    expect(items.filter((i) => i.providerRef === returned.providerRef)).toEqual([]);
  });

  it('finds no difference in a payment taken back whose instruction was changed since: it is held for what it was', async () => {
    const own = await system.newTenant();
    const schemeId = await own.bankDebitScheme();
    await bankDebitPaidNow(own, 'rec-returned-amended', { schemeId, instrument: 'bank_returned', amount: '100.00' });
    const instruction = (orderRef: string) => () =>
      system.orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId: own.tenantId, order: { orderRef } });
    const returned = await eventually(
      instruction('rec-returned-amended'),
      (r) => r.status === 'LATE' && r.returnedAt != null,
      { what: 'the debit returned, to be collected again' },
    );
    const amended = await own.client.request('PATCH', '/v1/order-management/rec-returned-amended/instructions/a', {
      body: { amount: '60.00' },
    });
    expect(amended.status, JSON.stringify(amended.body)).toBe(200);
    await eventually(instruction('rec-returned-amended'), (r) => r.amountMinor === 6000n, { what: 'the new amount' });
    // And one charged back, amended, then paid for again under another reference.
    const takenBack = await cardPaymentSettled(system, own, 'rec-charged-back-amended', '10.00', {
      card: 'card_chargeback',
      until: (row) => row.status === 'FAILED' && row.returnedAt != null,
    });
    // Retried tomorrow, changed meanwhile, then paid now.
    const retried = await own.client.request(
      'POST',
      '/v1/order-management/rec-charged-back-amended/instructions/i1/retry',
      { body: { financialInstrumentId: 'card_ok', dueDate: new Date(Date.now() + 86_400_000).toISOString() } },
    );
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const cut = await own.client.request('PATCH', '/v1/order-management/rec-charged-back-amended/instructions/i1', {
      body: { amount: '6.00' },
    });
    expect(cut.status, JSON.stringify(cut.body)).toBe(200);
    const payNow = await own.client.request(
      'POST',
      '/v1/order-management/rec-charged-back-amended/instructions/i1/pay',
      {
        body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok', amount: '6.00' },
      },
    );
    expect(payNow.status, JSON.stringify(payNow.body)).toBe(202);
    const paidAgain = await eventually(
      instruction('rec-charged-back-amended'),
      (r) => r.status === 'SETTLED' && r.providerRef !== takenBack.providerRef,
      { what: 'paid again, for the new amount' },
    );
    expect([paidAgain.amountMinor, paidAgain.returnedPaymentMinor]).toEqual([600n, 1000n]);
    const items = (await runItems(own, 'SANDBOX_BANK')).concat(await runItems(own, 'SANDBOX_CARD')) as {
      providerRef: string;
    }[];
    const about = [returned.providerRef, takenBack.providerRef, paidAgain.providerRef];
    expect(items.filter((i) => about.includes(i.providerRef))).toEqual([]);
  });

  it('holds a payment charged back, then paid for again under another reference, as returned: a provider saying it settled is a status difference', async () => {
    const takenBack = await cardPaymentSettled(system, tenant, 'rec-charged-back-again', '10.00', {
      card: 'card_chargeback',
      until: (row) => row.status === 'FAILED' && row.returnedAt != null,
    });
    const retried = await tenant.client.request(
      'POST',
      '/v1/order-management/rec-charged-back-again/instructions/i1/retry',
      { body: { financialInstrumentId: 'card_declined' } },
    );
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const row = await eventually(
      () =>
        system.orm.em.fork().findOneOrFail(PaymentInstruction, {
          tenantId: tenant.tenantId,
          order: { orderRef: 'rec-charged-back-again' },
        }),
      (r) => r.status === 'FAILED' && r.attempts === 2,
      { what: 'the retry declined' },
    );
    expect(row.providerRef).not.toBe(takenBack.providerRef);
    expect(row.returnedRef).toBe(takenBack.providerRef);
    await misreport({ providerRef: takenBack.providerRef, status: 'SETTLED' });
    const items = (await runItems(tenant, 'SANDBOX_CARD')) as {
      providerRef: string;
      kind: string;
      ours: { status: string } | null;
    }[];
    const about = items.filter((i) => [takenBack.providerRef, row.providerRef].includes(i.providerRef));
    expect(about).toMatchObject([{ kind: 'status', providerRef: takenBack.providerRef, ours: { status: 'RETURNED' } }]);
  });

  it('holds each payment of an instruction collected three times as its own: the first, taken back, is a status difference when the provider says it settled', async () => {
    const own = await system.newTenant();
    const first = await cardPaymentSettled(system, own, 'rec-thrice', '10.00', {
      card: 'card_chargeback',
      until: (row) => row.status === 'FAILED' && row.returnedAt != null,
    });
    const instruction = () =>
      system.orm.em
        .fork()
        .findOneOrFail(PaymentInstruction, { tenantId: own.tenantId, order: { orderRef: 'rec-thrice' } });
    const retry = async (financialInstrumentId: string) => {
      const retried = await own.client.request('POST', '/v1/order-management/rec-thrice/instructions/i1/retry', {
        body: { financialInstrumentId },
      });
      expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    };
    await retry('card_chargeback');
    const second = await eventually(
      instruction,
      (r) => r.status === 'FAILED' && r.returnedRef != null && r.returnedRef !== first.providerRef,
      { what: 'the second payment charged back' },
    );
    await retry('card_ok');
    const third = await eventually(instruction, (r) => r.status === 'SETTLED' && r.providerRef !== second.returnedRef, {
      what: 'paid the third time',
    });
    // Our row remembers only the last two payments; the settlement rows remember all three.
    expect(third.returnedRef).toBe(second.returnedRef);
    expect(new Set([first.providerRef, second.returnedRef, third.providerRef]).size).toBe(3);
    await misreport({ providerRef: first.providerRef, status: 'SETTLED' });
    const items = (await runItems(own, 'SANDBOX_CARD')) as {
      providerRef: string;
      kind: string;
      orderRef: string | null;
      ours: { status: string; amount: string } | null;
    }[];
    expect(items).toMatchObject([
      {
        kind: 'status',
        providerRef: first.providerRef,
        orderRef: 'rec-thrice',
        ours: { status: 'RETURNED', amount: '10.00' },
      },
    ]);
  });

  it('tells a reference two instructions hold: the provider’s one payment is not matched as both', async () => {
    const own = await system.newTenant();
    const first = await cardPaymentSettled(system, own, 'shared-first');
    const second = await cardPaymentSettled(system, own, 'shared-second');
    // The second's settlement under the first one's reference, as a provider answering the second
    // payment's call with it would leave it (its settlement row: written once, never projected over).
    await system.orm.em
      .getConnection()
      .execute('update payment_settlement set provider_ref = ? where instruction_id = ?', [
        first.providerRef,
        second.instructionId,
      ]);
    const run = await reconciliationOn(system.orm).run(own.tenantId, 'SANDBOX_CARD', inTenMinutes(), 'REQUESTED');
    const items = await system.orm.em.fork().find(ReconciliationItem, { runId: run!.id });
    // Told shared, of that reference only. Which instruction's payment is staged under it is the
    // scan's choice: the second's settlement, not its instruction's current payment, reads as taken
    // back, so a status difference may show beside it (both had the reference, it would not).
    expect(items.filter((i) => i.kind === 'shared').map((i) => i.providerRef)).toEqual([first.providerRef]);
    expect(items.filter((i) => i.providerRef !== first.providerRef)).toEqual([]);
    expect(['shared-first', 'shared-second']).toContain(items.find((i) => i.kind === 'shared')!.orderRef);
  });

  it('compares a page of references at a time, both sides of each together, and keeps none of them after the run', async () => {
    const own = await system.newTenant();
    await cardPaymentSettled(system, own, 'page-agreed');
    const amountWrong = await cardPaymentSettled(system, own, 'page-amount');
    const omitted = await cardPaymentSettled(system, own, 'page-missing');
    await misreport({ providerRef: amountWrong.providerRef, amountMinor: '999' });
    await misreport({ providerRef: omitted.providerRef, omit: true });
    const phantom = await phantomPayment(own);
    // One reference a page: the run pages through them all (where its pages end depends on the
    // references the sandbox made: the next test pins it).
    const reconciliation = reconciliationOn(system.orm, { comparePage: 1 });
    const run = await reconciliation.run(own.tenantId, 'SANDBOX_CARD', inTenMinutes(), 'REQUESTED');
    // Ours: three settled. Theirs of the period: the agreed, the misreported and the phantom.
    expect(run).toMatchObject({ status: 'SUCCEEDED', compared: 6, mismatches: 3 });
    const items = await system.orm.em.fork().find(ReconciliationItem, { runId: run!.id });
    expect(items.map((i) => [i.kind, i.providerRef]).sort()).toEqual(
      [
        ['amount', amountWrong.providerRef],
        ['extra', phantom],
        ['missing', omitted.providerRef],
      ].sort(),
    );
    expect(await system.orm.em.fork().count(ReconciliationEntry, { runId: run!.id })).toBe(0);
  });

  it('records a run’s first differences one by one, across pages, and counts them all', async () => {
    const own = await system.newTenant();
    const phantoms = [await phantomPayment(own), await phantomPayment(own), await phantomPayment(own)];
    const before = await mismatchCount('extra');
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    // One reference a page, in order of reference: the first two found are the two lowest.
    const run = await reconciliationOn(system.orm, { comparePage: 1, maxRecordedMismatches: 2, logger }).run(
      own.tenantId,
      'SANDBOX_CARD',
      inTenMinutes(),
      'REQUESTED',
    );
    expect(run).toMatchObject({ status: 'SUCCEEDED', compared: 3, mismatches: 3, recorded: 2 });
    const items = await system.orm.em.fork().find(ReconciliationItem, { runId: run!.id });
    expect(items.map((i) => i.providerRef).sort()).toEqual(phantoms.sort().slice(0, 2));
    expect(await mismatchCount('extra')).toBe(before + 3);
    const shown = await own.client.request('GET', `/v1/reconciliation/runs/${run!.id}`);
    expect(shown.body).toMatchObject({ mismatches: 3, recorded: 2 });
    // Its end told, part by part, for an operator to see what a run at its cap costs.
    expect(lines.filter((l) => l.msg === 'reconciliation run ended')).toEqual([
      expect.objectContaining({
        tenantId: own.tenantId,
        runId: run!.id,
        mismatches: 3,
        recorded: 2,
        deliveries: { written: 0, started: 0 },
        endMs: {
          closing: expect.any(Number),
          deletingEntries: expect.any(Number),
          startingDeliveries: expect.any(Number),
        },
      }),
    ]);
  });

  it('reads a run’s entries back a page of references at a time, each with both its sides, and leaves them to housekeeping once the run ended or stopped beating', async () => {
    const own = await system.newTenant();
    const em = system.orm.em.fork();
    const newRun = async (status: ReconciliationRun['status'], heartbeatAt: Date | null = null) => {
      const run = Object.assign(new ReconciliationRun(), {
        id: randomUUID(),
        tenantId: own.tenantId,
        appId: 'SANDBOX_CARD',
        periodFrom: new Date(),
        periodTo: new Date(),
        trigger: 'REQUESTED' as const,
        status,
        heartbeatAt,
      });
      await em.insert(ReconciliationRun, run);
      return run.id;
    };
    const payment = { direction: 'DEBIT', amountMinor: '1000', currency: 'EUR', status: 'SETTLED' };
    const ours = (runId: string, providerRef: string) =>
      Object.assign(new ReconciliationEntry(), {
        runId,
        providerRef,
        side: 'ours',
        orderRef: 'o',
        instructionRef: providerRef,
        ...payment,
      });
    const theirs = (runId: string, providerRef: string, inPeriod = true) =>
      Object.assign(new ReconciliationEntry(), {
        runId,
        providerRef,
        side: 'theirs',
        madeAt: new Date().toISOString(),
        inPeriod,
        ...payment,
      });
    const entries = (runId: string) => [
      ...['a', 'b', 'c'].flatMap((ref) => [ours(runId, ref), theirs(runId, ref)]),
      ours(runId, 'd'), // settled here, not in the ledger
      theirs(runId, 'e', false), // made before the period, none of ours: only there to be matched
    ];
    const running = await newRun('RUNNING');
    await em.insertMany(ReconciliationEntry, entries(running));
    // Three entries a read, one reference a page: b's and c's sides fall on both sides of a page's end.
    const { mismatches, compared } = await compareEntries(system.orm, running, { page: 1 });
    expect(mismatches.map((m) => `${m.kind}:${m.providerRef}`)).toEqual(['missing:d']);
    expect(compared).toBe(4 + 3);
    const ended = await newRun('SUCCEEDED');
    await em.insertMany(ReconciliationEntry, entries(ended));
    // Silent for two days: its process stopped. Given up, its entries go with the ended run's.
    const stopped = await newRun('RUNNING', new Date(Date.now() - 2 * 86_400_000));
    await em.insertMany(ReconciliationEntry, entries(stopped));
    const deleted = await new Housekeeping(system.orm).runOnce();
    expect(deleted.reconciliation_entry).toBeGreaterThanOrEqual(16);
    expect(await em.fork().count(ReconciliationEntry, { runId: { $in: [ended, stopped] } })).toBe(0);
    expect(await em.fork().findOneOrFail(ReconciliationRun, stopped)).toMatchObject({
      status: 'FAILED',
      failure: STOPPED_RUN_FAILURE,
    });
    expect(await em.fork().count(ReconciliationEntry, { runId: running })).toBe(8);
    expect((await em.fork().findOneOrFail(ReconciliationRun, running)).status).toBe('RUNNING');
    await deleteEntries(system.orm, running);
    expect(await em.fork().count(ReconciliationEntry, { runId: running })).toBe(0);
  });

  it('stops a run given up for dead while it still ran at its next ledger page, and writes nothing of it', async () => {
    const own = await system.newTenant();
    await phantomPayment(own);
    const pagesRead: (string | undefined)[] = [];
    // Three pages: the sandbox's, then two empty ones; another worker takes the run for dead while the second is read.
    const reconciliation = reconciliationOn(system.orm, {
      ledger: (sandbox) => async (period, cursor, installation) => {
        pagesRead.push(cursor);
        if (cursor === undefined) return { ...(await sandbox(period, undefined, installation)), nextCursor: 'second' };
        if (cursor === 'second') await giveUpRunsOf(own.tenantId);
        return { items: [], nextCursor: cursor === 'second' ? 'third' : null };
      },
    });
    const run = await reconciliation.run(own.tenantId, 'SANDBOX_CARD', inTenMinutes(), 'REQUESTED');
    expect(pagesRead).toEqual([undefined, 'second']);
    expect(run).toMatchObject({ status: 'FAILED', failure: STOPPED_RUN_FAILURE, mismatches: 0 });
    expect(await system.orm.em.fork().count(ReconciliationItem, { runId: run!.id })).toBe(0);
  });

  it('stops a run at its next ledger page when its worker shuts down, and frees its day for the next worker', async () => {
    const own = await system.newTenant();
    await phantomPayment(own);
    const shuttingDown = new AbortController();
    const pagesRead: (string | undefined)[] = [];
    const reconciliation = reconciliationOn(system.orm, {
      ledger: (sandbox) => async (period, cursor, installation) => {
        pagesRead.push(cursor);
        // SIGTERM comes while the provider is asked for the first page.
        shuttingDown.abort();
        return { ...(await sandbox(period, undefined, installation)), nextCursor: 'second' };
      },
    });
    const key = 'SANDBOX_CARD:2027-06-14';
    const run = await reconciliation.run(
      own.tenantId,
      'SANDBOX_CARD',
      inTenMinutes(),
      'SCHEDULED',
      key,
      shuttingDown.signal,
    );
    expect(pagesRead).toEqual([undefined]);
    expect(run).toMatchObject({ status: 'FAILED', failure: SHUT_DOWN_FAILURE, scheduleKey: null, mismatches: 0 });
    expect(await system.orm.em.fork().count(ReconciliationItem, { runId: run!.id })).toBe(0);
    // The day is free: the next worker runs it at once, not an hour later.
    const again = await reconciliationOn(system.orm).run(
      own.tenantId,
      'SANDBOX_CARD',
      inTenMinutes(),
      'SCHEDULED',
      key,
    );
    expect(again).toMatchObject({ status: 'SUCCEEDED', scheduleKey: key });
  });

  it('writes nothing of a run given up for dead after its last ledger page: the freeing stands', async () => {
    const own = await system.newTenant();
    const phantom = await phantomPayment(own);
    expect(phantom).toBeTruthy();
    // Given up right after the run's one beat (its only page): past every beat, before it ends. What
    // this shows is finish()'s reading of the run's row; the lock it reads it under is the next test's.
    const giveUp = `update reconciliation_run set status = 'FAILED', failure = $failure$${STOPPED_RUN_FAILURE}$failure$,
      schedule_key = null, finished_at = now() where id = new.id`;
    await afterEveryBeat(own.tenantId, giveUp, async () => {
      const run = await reconciliationOn(system.orm).run(own.tenantId, 'SANDBOX_CARD', inTenMinutes(), 'REQUESTED');
      // It compared the phantom payment, and says nothing of it: its day belongs to whoever freed it.
      expect(run).toMatchObject({ status: 'FAILED', failure: STOPPED_RUN_FAILURE, mismatches: 0 });
      expect(await system.orm.em.fork().count(ReconciliationItem, { runId: run!.id })).toBe(0);
    });
  });

  // PGlite (no DATABASE_URL) has one session: its advisory locks never make anyone wait.
  it.skipIf(inject('databasePoolSize') === 1)(
    'writes nothing of a run another worker frees while it ends: the two wait on the run’s row, and the freeing stands',
    async () => {
      const url = lane().databaseUrl;
      const [gate, freer, observer] = [new pg.Client(url), new pg.Client(url), new pg.Client(url)];
      await Promise.all([gate.connect(), freer.connect(), observer.connect()]);
      const pidOf = async (client: pg.Client) =>
        (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
      const [gatePid, freerPid] = [await pidOf(gate), await pidOf(freer)];
      /** The statements waiting on `pid`'s locks. */
      const waitingOn = async (pid: number) =>
        (
          await observer.query<{ query: string }>(
            'select query from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
            [pid],
          )
        ).rows.map((r) => r.query);
      const sql = system.orm.em.getConnection();
      /**
       * One run, freed while it ends; 'raced' when the run took its row back first. Once the beat
       * commits, the run's end and the waiting freeing both go for the row, and which one Postgres
       * lets have it first is not promised: on a busy machine the run can get there first, and
       * the freeing then finds it ended and frees nothing. That is right too, but not the case here.
       */
      const freedWhileEnding = async (): Promise<'raced' | 'freed'> => {
        const own = await system.newTenant();
        await phantomPayment(own);
        // The run's last beat (its ledger page, then its one page of references: the second) waits on
        // the gate while it holds the run's row, so that the freer can be made to wait behind it.
        await gate.query('select pg_advisory_lock($1)', [BEAT_GATE]);
        await sql.execute('drop sequence if exists test_beats_seen');
        await sql.execute('create sequence test_beats_seen');
        let outcome: 'raced' | 'freed' = 'freed';
        await afterEveryBeat(
          own.tenantId,
          `if nextval('test_beats_seen') = 2 then perform pg_advisory_xact_lock(${BEAT_GATE}); end if`,
          async () => {
            const ending = reconciliationOn(system.orm).run(own.tenantId, 'SANDBOX_CARD', inTenMinutes(), 'REQUESTED');
            try {
              await eventually(
                () => waitingOn(gatePid),
                (q) => q.length === 1,
                { what: 'the last beat at the gate' },
              );
              const [{ id: runId }] = (
                await observer.query<{ id: string }>(
                  `select id from reconciliation_run where tenant_id = $1 and status = 'RUNNING'`,
                  [own.tenantId],
                )
              ).rows;
              // Another worker's dayIsFree, from its own connection: it frees the run it takes for dead.
              await freer.query('begin');
              const freeing = freer.query(
                `update reconciliation_run set status = 'FAILED', failure = $2, schedule_key = null, finished_at = now()
                  where id = $1 and status = 'RUNNING'`,
                [runId, STOPPED_RUN_FAILURE],
              );
              await eventually(
                () => observer.query('select pg_blocking_pids($1) as p', [freerPid]),
                (r) => r.rows[0].p.length > 0,
                { what: 'the freeing waiting behind the beat' },
              );
              await gate.query('select pg_advisory_unlock($1)', [BEAT_GATE]);
              // The beat has ended; the run goes on to its end while the freeing, not yet committed, holds its row.
              if ((await freeing).rowCount === 0) {
                await freer.query('commit');
                expect(await ending).toMatchObject({ status: 'SUCCEEDED' });
                outcome = 'raced';
                return;
              }
              const [waiter] = await eventually(
                () => waitingOn(freerPid),
                (q) => q.length === 1,
                { what: 'the run’s end waiting on the freeing' },
              );
              // finish()'s read of the row, not a beat (which would stop the run on its own).
              expect(waiter).toMatch(/ for update$/i);
              await freer.query('commit');
              const run = await ending;
              expect(run).toMatchObject({ status: 'FAILED', failure: STOPPED_RUN_FAILURE, mismatches: 0 });
              expect(await system.orm.em.fork().count(ReconciliationItem, { runId })).toBe(0);
              expect(await system.orm.em.fork().findOneOrFail(ReconciliationRun, runId)).toMatchObject({
                status: 'FAILED',
                scheduleKey: null,
              });
            } finally {
              // Whatever failed, the run is let go before the trigger is dropped: the drop waits for it.
              await gate.query('select pg_advisory_unlock_all()').catch(() => undefined);
              await freer.query('rollback').catch(() => undefined);
              await ending.catch(() => undefined);
            }
          },
        );
        return outcome;
      };
      try {
        const outcomes: string[] = [];
        while (outcomes.length < 3 && outcomes.at(-1) !== 'freed') outcomes.push(await freedWhileEnding());
        expect(outcomes.at(-1), `outcomes: ${outcomes.join(', ')}`).toBe('freed');
      } finally {
        await sql.execute('drop sequence if exists test_beats_seen');
        await Promise.all([gate.end(), freer.end(), observer.end()]);
      }
    },
  );

  it('beats at every page it compares, as at every ledger page it stages', async () => {
    const own = await system.newTenant();
    for (let n = 0; n < 3; n++) await phantomPayment(own);
    const sql = system.orm.em.getConnection();
    await sql.execute('create table if not exists test_beats (run_id uuid not null)');
    try {
      await afterEveryBeat(own.tenantId, 'insert into test_beats values (new.id)', async () => {
        const run = await reconciliationOn(system.orm, { comparePage: 1 }).run(
          own.tenantId,
          'SANDBOX_CARD',
          inTenMinutes(),
          'REQUESTED',
        );
        expect(run).toMatchObject({ status: 'SUCCEEDED', mismatches: 3 });
        const [{ beats }] = await sql.execute<{ beats: string }[]>(
          'select count(*) as beats from test_beats where run_id = ?',
          [run!.id],
        );
        // One ledger page, then the three references a page at a time (a page holds three entries, the
        // third read again with the next when the page is full): two pages.
        expect(Number(beats)).toBe(1 + 2);
      });
    } finally {
      await sql.execute('drop table if exists test_beats');
    }
  });

  it('says so when the provider’s ledger cannot be read, and refuses an app or period it cannot reconcile', async () => {
    const stranger = await system.newTenant();
    // The installation's key is one the sandbox has never seen: the ledger answers, empty.
    const empty = await stranger.client.request('POST', '/v1/reconciliation/runs', {
      body: { appId: 'SANDBOX_CARD', ...around(10) },
    });
    expect(empty.body).toMatchObject({ status: 'SUCCEEDED', compared: 0, mismatches: 0 });

    const notInstalled = await tenant.client.request('POST', '/v1/reconciliation/runs', {
      body: { appId: 'HTTP_CONNECTOR', ...around(10) },
    });
    expect(notInstalled.status).toBe(400);
    expect(notInstalled.body.errors).toEqual([expect.objectContaining({ path: 'appId', code: 'app_not_installed' })]);
    const tooLong = await tenant.client.request('POST', '/v1/reconciliation/runs', {
      body: { appId: 'SANDBOX_CARD', from: '2030-01-01T00:00:00Z', to: '2030-03-01T00:00:00Z' },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors).toEqual([expect.objectContaining({ path: 'to', code: 'invalid_period' })]);

    // A provider that does not answer: a FAILED run saying why, not a day without differences.
    const unreachable = reconciliationOn(system.orm, { sandboxUrl: 'http://127.0.0.1:9' });
    const failed = await unreachable.run(
      tenant.tenantId,
      'SANDBOX_CARD',
      { from: new Date(0), to: new Date() },
      'REQUESTED',
    );
    expect(failed).toMatchObject({ status: 'FAILED', mismatches: 0 });
    expect(failed!.failure).toBeTruthy();
  });

  it('runs each installed app’s whole days of the last week once, and the week before it again, whichever worker asks first', async () => {
    await onFreshDatabase(async (orm) => {
      const { tenantId } = await createTenantRows(orm, system.masterKeys);
      const worker = (retryAfterMs?: number) => reconciliationOn(orm, { retryAfterMs });
      const now = new Date('2027-06-15T01:30:00Z');
      // Installed before the week the test runs on, whatever today's date: no day is skipped as before it.
      await orm.em.fork().nativeUpdate(AppInstallation, { tenantId }, { createdAt: new Date('2027-06-01T00:00:00Z') });
      // A worker shutting down starts no run.
      expect(await worker().runScheduled(now, AbortSignal.abort())).toBe(0);
      // Two workers at once: each app's day is run by one of them, each of the week's seven days, and
      // each day of the week before by its 7-day recheck (no run compared them: here they are compared
      // first): every count below is doubled by the rechecks.
      const [a, b] = await Promise.all([worker().runScheduled(now), worker().runScheduled(now)]);
      expect(a + b).toBe(3 * 7 * 2);
      expect(await worker().runScheduled(new Date('2027-06-15T23:00:00Z'))).toBe(0);
      const week = await orm.em.fork().find(ReconciliationRun, { tenantId });
      const daysOf = (rechecks: boolean) =>
        new Set(week.filter((r) => r.scheduleKey!.includes('+') === rechecks).map((r) => r.scheduleKey!.split(':')[1]));
      expect(daysOf(false)).toEqual(new Set(['08', '09', '10', '11', '12', '13', '14'].map((d) => `2027-06-${d}`)));
      expect(daysOf(true)).toEqual(new Set(['01', '02', '03', '04', '05', '06', '07'].map((d) => `2027-06-${d}+7d`)));
      expect(week.every((r) => r.trigger === 'SCHEDULED' && r.status === 'SUCCEEDED')).toBe(true);
      const runs = await orm.em
        .fork()
        .find(
          ReconciliationRun,
          { tenantId, periodFrom: new Date('2027-06-14T00:00:00Z') },
          { orderBy: { appId: 'asc' } },
        );
      expect(runs.map((r) => [r.appId, r.scheduleKey, r.trigger, r.status])).toEqual([
        ['SANDBOX_BANK', 'SANDBOX_BANK:2027-06-14', 'SCHEDULED', 'SUCCEEDED'],
        ['SANDBOX_CARD', 'SANDBOX_CARD:2027-06-14', 'SCHEDULED', 'SUCCEEDED'],
        ['SANDBOX_VOUCHERS', 'SANDBOX_VOUCHERS:2027-06-14', 'SCHEDULED', 'SUCCEEDED'],
      ]);
      expect(runs[0].periodFrom.toISOString()).toBe('2027-06-14T00:00:00.000Z');
      expect(runs[0].periodTo.toISOString()).toBe('2027-06-15T00:00:00.000Z');
      // A day whose run failed is tried again an hour later (here at once), the failed run kept without the day's key.
      const unreachable = reconciliationOn(orm, { sandboxUrl: 'http://127.0.0.1:9' });
      const nextDay = new Date('2027-06-16T01:30:00Z');
      expect(await unreachable.runScheduled(nextDay)).toBe(3 * 2);
      expect(await worker().runScheduled(nextDay)).toBe(0);
      expect(await worker(0).runScheduled(nextDay)).toBe(3 * 2);
      const day = await orm.em
        .fork()
        .find(ReconciliationRun, { tenantId, periodFrom: new Date('2027-06-15T00:00:00Z') });
      expect(day.map((r) => [r.status, r.scheduleKey !== null]).sort()).toEqual([
        ['FAILED', false],
        ['FAILED', false],
        ['FAILED', false],
        ['SUCCEEDED', true],
        ['SUCCEEDED', true],
        ['SUCCEEDED', true],
      ]);
      // A day is run an hour after it ends, not before.
      expect(await worker().runScheduled(new Date('2027-06-17T00:30:00Z'))).toBe(0);
      expect(await worker().runScheduled(new Date('2027-06-17T01:30:00Z'))).toBe(3 * 2);
      // Days no worker ran (all down from the 17th to the 20th) are run late, within the week.
      expect(await worker().runScheduled(new Date('2027-06-20T01:30:00Z'))).toBe(3 * 3 * 2);
      // A day whose runs failed through its own day is not tried again once it is past: only the last is.
      expect(await unreachable.runScheduled(new Date('2027-06-21T01:30:00Z'))).toBe(3 * 2);
      expect(await worker(0).runScheduled(new Date('2027-06-22T01:30:00Z'))).toBe(3 * 2);
    });
  });

  it('runs no day, nor recheck, of an app before its key scope last changed: those payments are in another ledger', async () => {
    await onFreshDatabase(async (orm) => {
      const { tenantId } = await createTenantRows(orm, system.masterKeys, ['SANDBOX_CARD']);
      await orm.em
        .fork()
        .nativeUpdate(
          AppInstallation,
          { tenantId },
          { createdAt: new Date('2027-06-01T00:00:00Z'), keyScopeChangedAt: new Date('2027-07-05T12:00:00Z') },
        );
      expect(await reconciliationOn(orm).runScheduled(new Date('2027-07-10T01:30:00Z'))).toBe(5);
      const runs = await orm.em.fork().find(ReconciliationRun, { tenantId });
      expect(runs.map((r) => r.scheduleKey).sort()).toEqual(
        ['05', '06', '07', '08', '09'].map((d) => `SANDBOX_CARD:2027-07-${d}`),
      );
    });
  });

  it('compares a day again a week, a month and its reversal window later, telling only differences no run of it told', async () => {
    await onFreshDatabase(async (orm) => {
      const { tenantId, sandboxApiKey } = await createTenantRows(orm, system.masterKeys, ['SANDBOX_CARD']);
      await orm.em.fork().nativeUpdate(AppInstallation, { tenantId }, { createdAt: new Date('2027-07-01T00:00:00Z') });
      /** A card payment of 50.00 EUR the provider kept on 2 July, which no order of ours made. */
      const keptOnTheDay = async () =>
        (
          await misreport({
            phantom: {
              apiKey: sandboxApiKey,
              appId: 'SANDBOX_CARD',
              direction: 'DEBIT',
              amountMinor: '5000',
              currency: 'EUR',
              status: 'SETTLED',
              createdAt: '2027-07-02T10:00:00Z',
            },
          })
        ).providerRef;
      const first = await keptOnTheDay();
      const scheduled = async (at: string, key: string) => {
        await reconciliationOn(orm).runScheduled(new Date(at));
        const run = await orm.em.fork().findOneOrFail(ReconciliationRun, { tenantId, scheduleKey: key });
        const items = await orm.em.fork().find(ReconciliationItem, { runId: run.id });
        return { run, told: items.map((item) => [item.kind, item.providerRef]) };
      };
      const day = await scheduled('2027-07-03T01:30:00Z', 'SANDBOX_CARD:2027-07-02');
      expect(day.told).toEqual([['extra', first]]);
      // Found at the provider after its day's run (a payment reported late; so would a chargeback be).
      const later = await keptOnTheDay();
      // The metric counts what is new: the payment told already is in the run's count only.
      const extraBefore = await mismatchCount('extra');
      const week = await scheduled('2027-07-10T01:30:00Z', 'SANDBOX_CARD:2027-07-02+7d');
      expect(await mismatchCount('extra')).toBe(extraBefore + 1);
      expect(week.run).toMatchObject({ status: 'SUCCEEDED', mismatches: 2, recorded: 1 });
      expect(week.run.periodFrom.toISOString()).toBe('2027-07-02T00:00:00.000Z');
      expect(week.told).toEqual([['extra', later]]);
      const month = await scheduled('2027-08-02T01:30:00Z', 'SANDBOX_CARD:2027-07-02+30d');
      expect(month.run).toMatchObject({ status: 'SUCCEEDED', mismatches: 2, recorded: 0 });
      expect(await mismatchCount('extra')).toBe(extraBefore + 1);
      // The card app's reversal window: 120 days.
      const window = await scheduled('2027-10-31T01:30:00Z', 'SANDBOX_CARD:2027-07-02+120d');
      expect(window.run).toMatchObject({ status: 'SUCCEEDED', mismatches: 2, recorded: 0 });
      expect(
        await orm.em.fork().count(ReconciliationRun, { tenantId, scheduleKey: { $like: 'SANDBOX_CARD:2027-07-02%' } }),
      ).toBe(4);
    });
  });
});
