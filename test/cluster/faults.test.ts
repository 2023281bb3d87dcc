import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapAccount } from '../../api/auth/bootstrap-account.js';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { loadConfig } from '../../config.js';
import { PaymentInstruction } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { startCluster, type Cluster } from '../../scripts/cluster/topology.js';
import { setUpFirstTenant } from '../../scripts/first-tenant.js';
import { ensureTemporalServerBinaries } from '../../scripts/temporal/server-binaries.js';
import { freeClusterPorts } from '../../scripts/cluster/free-ports.js';
import { providerNet, type SandboxLedgerItem } from '../support/sandbox.js';
import { paymentCallsInFlight } from '../support/calls-in-flight.js';
import { eventually } from '../support/eventually.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';

/*
 * Faults on the production topology (ARCHITECTURE.md, "Production topology"): the Temporal server
 * on a PostgreSQL server of this test's own (so that it can be restarted), two workers, two APIs.
 * After each fault every instruction is paid exactly once, and the API answered 200 or 503 with
 * Retry-After while a dependency was down, never 500.
 */

const cacheDir = loadConfig().cacheDir;
const binariesCached = existsSync(join(cacheDir, 'temporal-server-v1.29.1', 'bin', 'server'));
const runnable = !!postgresBinDir() && (binariesCached || existsSync('/usr/local/go/bin/go') || !!process.env.CI);
if (!runnable && process.env.CI)
  throw new Error('the fault tests need PostgreSQL server binaries and Go (for the Temporal server)');

let postgres: PrivatePostgres;
let cluster: Cluster;
let orm: MikroORM;
let clients: PaymentSchedulerClient[];
let tenantId: string;
/** Reads what operators see of an order (its memo), from the cluster's Temporal server. */
let temporal: Client;

beforeAll(async () => {
  if (!runnable) return;
  postgres = await startPrivatePostgres();
  const masterKeys = { current: randomBytes(32).toString('base64') };
  cluster = await startCluster({
    databaseUrl: postgres.url,
    binaries: ensureTemporalServerBinaries(cacheDir, () => undefined),
    dataDir: mkdtempSync(join(tmpdir(), 'cluster-faults-')),
    masterKeys,
    ports: await freeClusterPorts(),
    logLevel: 'warn',
    env: { SANDBOX_SETTLE_MS: '300', SANDBOX_RETURN_MS: '3000', DATABASE_POOL_SIZE: '10' },
  });
  orm = await openDatabase({ url: postgres.url, poolSize: 2, onWarning: () => undefined });
  temporal = new Client({ connection: await Connection.connect({ address: cluster.temporalAddress }) });
  const account = await bootstrapAccount(orm, masterKeys, 'faults');
  const tenant = await setUpFirstTenant(cluster.apiUrls[0], account);
  tenantId = tenant.tenantId;
  clients = cluster.apiUrls.map((baseUrl) => new PaymentSchedulerClient({ baseUrl, ...tenant }));
  // An order far in the future, whose instruction the probe amends: a change goes through Temporal.
  expect(
    (
      await clients[0].request('POST', '/v1/order-management', {
        body: { orderRef: 'probe', instructions: [instruction('p', '2031-01-01T00:00:00Z', '1.00')] },
      })
    ).status,
  ).toBe(202);
}, 300_000);

afterAll(async () => {
  await temporal?.connection.close();
  await cluster?.stop();
  await orm?.close();
  postgres?.close();
});

function instruction(instructionRef: string, due: string, amount: string, financialInstrumentId = 'card_ok') {
  return {
    instructionRef,
    direction: 'DEBIT',
    amount,
    currency: 'EUR',
    country: 'FR',
    openDate: due,
    dueDate: due,
    financialInstrumentId,
  };
}

/** Orders of `perOrder` instructions each, falling due at the given instants in turn, with distinct amounts. */
async function submitOrders(
  prefix: string,
  orders: number,
  perOrder: number,
  dues: Date[],
  instrument = 'card_ok',
): Promise<string[]> {
  const refs = Array.from({ length: orders }, (_, o) => `${prefix}-${o}`);
  for (const [o, orderRef] of refs.entries()) {
    const instructions = Array.from({ length: perOrder }, (_, n) =>
      instruction(
        `i-${n}`,
        dues[n % dues.length].toISOString(),
        `${o + 1}.${String(n + 1).padStart(2, '0')}`,
        instrument,
      ),
    );
    const res = await clients[o % 2].request('POST', '/v1/order-management', { body: { orderRef, instructions } });
    expect(res.status).toBe(202);
  }
  return refs;
}

async function ledger(): Promise<SandboxLedgerItem[]> {
  const res = await fetch(`${cluster.sandboxUrl}/ledger?tenantId=${tenantId}`);
  return ((await res.json()) as { items: SandboxLedgerItem[] }).items;
}

/** Every instruction SETTLED, and the provider charged each exactly once, for its amount, under the reference the read model holds. */
async function expectEachPaidOnce(orderRefs: string[], instructions: number) {
  await eventually(
    () =>
      orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED', order: { orderRef: { $in: orderRefs } } }),
    (n) => n === instructions,
    { what: `${instructions} instructions SETTLED`, timeoutMs: 180_000, intervalMs: 500 },
  );
  const charges = (await ledger()).filter((c) => c.kind === 'PAYMENT' && orderRefs.includes(c.orderRef));
  const rows = await orm.em
    .fork()
    .find(PaymentInstruction, { tenantId, order: { orderRef: { $in: orderRefs } } }, { populate: ['order'] });
  expect(charges).toHaveLength(instructions);
  const byInstruction = new Map(charges.map((c) => [`${c.orderRef}/${c.instructionRef}`, c]));
  expect(byInstruction.size).toBe(instructions);
  for (const row of rows) {
    const charge = byInstruction.get(`${row.order.orderRef}/${row.instructionRef}`);
    expect(charge, `${row.order.orderRef}/${row.instructionRef}`).toBeDefined();
    expect(charge!.amountMinor).toBe(row.amountMinor.toString());
    expect(charge!.providerRef).toBe(row.providerRef);
  }
}

/**
 * The money proof: for every instruction, what the provider says moved (payments that settled, less
 * refunds that succeeded, less returns and chargebacks) equals the read model's net, and each order's
 * sum equals the net its workflow shows operators in its memo, to the minor unit.
 */
async function expectMoneyAgrees(orderRefs: string[]) {
  const items = (await ledger()).filter((i) => orderRefs.includes(i.orderRef));
  const rows = await orm.em
    .fork()
    .find(PaymentInstruction, { tenantId, order: { orderRef: { $in: orderRefs } } }, { populate: ['order'] });
  const net = (r: PaymentInstruction) => r.settledAmountMinor - r.refundedAmountMinor - r.returnedAmountMinor;
  for (const row of rows) {
    const mine = items.filter((i) => i.orderRef === row.order.orderRef && i.instructionRef === row.instructionRef);
    expect(providerNet(mine), `${row.order.orderRef}/${row.instructionRef}`).toBe(net(row));
  }
  for (const orderRef of orderRefs) {
    const expected = rows.filter((r) => r.order.orderRef === orderRef).reduce((sum, r) => sum + net(r), 0n);
    await eventually(
      async () => {
        const { memo } = await temporal.workflow.getHandle(orderWorkflowId(tenantId, orderRef)).describe();
        return BigInt((memo as { totals: { EUR: { netCollected: string } } }).totals.EUR.netCollected);
      },
      (shown) => shown === expected,
      { what: `${orderRef}'s memo to show its net`, timeoutMs: 30_000 },
    );
  }
}

/** Refunds of 0.50 of each of the order's first-half instructions, each asked for twice (through both APIs): one refund each. */
async function refundFirstHalf(orderRef: string) {
  // The provider answered before the read model shows it: a refund is asked for once the API shows the payment settled.
  await eventually(
    () =>
      orm.em.fork().count(PaymentInstruction, {
        tenantId,
        status: 'SETTLED',
        instructionRef: { $in: ['i-0', 'i-2', 'i-4'] },
        order: { orderRef },
      }),
    (n) => n === 3,
    { what: `${orderRef}'s first half settled in the read model`, timeoutMs: 30_000 },
  );
  for (const n of [0, 2, 4]) {
    for (const client of clients) {
      const res = await client.request('POST', `/v1/order-management/${orderRef}/instructions/i-${n}/refunds`, {
        body: { amount: '0.50' },
        headers: { 'idempotency-key': `faults-refund-${orderRef}-${n}` },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  }
}

/** The provider made one refund of each, and the read model counts it. */
async function expectRefundedOnce(orderRef: string) {
  // A refund call cut by the fault is retried on its backoff (up to 32 s between tries): waited for.
  const succeeded = (items: SandboxLedgerItem[]) => items.filter((r) => r.status === 'SUCCEEDED').length === 3;
  const refunds = await eventually(
    async () => (await ledger()).filter((i) => i.kind === 'REFUND' && i.orderRef === orderRef),
    (items) => items.length > 3 || succeeded(items),
    { what: `${orderRef}'s refunds at the provider`, timeoutMs: 60_000, intervalMs: 500 },
  );
  expect(refunds.map((r) => [r.instructionRef, r.amountMinor, r.status]).sort()).toEqual([
    ['i-0', '50', 'SUCCEEDED'],
    ['i-2', '50', 'SUCCEEDED'],
    ['i-4', '50', 'SUCCEEDED'],
  ]);
  await eventually(
    () => orm.em.fork().count(PaymentInstruction, { tenantId, refundedAmountMinor: 50n, order: { orderRef } }),
    (n) => n === 3,
    { what: `${orderRef}'s refunds in the read model`, timeoutMs: 60_000 },
  );
}

/** Every instruction of the orders charged back and FAILED. */
async function expectChargedBack(orderRefs: string[]) {
  await eventually(
    () =>
      orm.em.fork().count(PaymentInstruction, {
        tenantId,
        status: 'FAILED',
        returnCode: 'fraudulent',
        order: { orderRef: { $in: orderRefs } },
      }),
    (n) => n === orderRefs.length * 3,
    { what: 'the chargebacks taken', timeoutMs: 90_000, intervalMs: 500 },
  );
}

interface Answer {
  what: string;
  status: number;
  retryAfter: string | null;
}

/** Calls both APIs over and over (a read, and an amendment that goes through Temporal) until stopped. */
function probeApis() {
  const answers: Answer[] = [];
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const client = clients[n % 2];
      const [what, call] =
        n % 2 === 0
          ? ['list orders', () => client.request('GET', '/v1/order-management')]
          : [
              'amend',
              () =>
                client.request('PATCH', '/v1/order-management/probe/instructions/p', {
                  body: { metadata: { probe: String(n) } },
                }),
            ];
      n++;
      try {
        const res = await call();
        answers.push({ what, status: res.status, retryAfter: res.headers.get('retry-after') });
      } catch (err) {
        answers.push({ what: `${what}: ${(err as Error).message}`, status: 0, retryAfter: null });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await loop;
      return answers;
    },
  };
}

function expectOnly200Or503WithRetryAfter(answers: Answer[]) {
  const wrong = answers.filter((a) => !(a.status === 200 || (a.status === 503 && Number(a.retryAfter) > 0)));
  expect(wrong).toEqual([]);
}

function expectNoCrash() {
  expect(cluster.all().flatMap((p) => p.unexpectedExits.map((exit) => ({ process: p.name, ...exit })))).toEqual([]);
}

describe.skipIf(!runnable)('the production topology under faults', () => {
  it('pays every instruction once while one worker after the other is SIGKILLed during a burst of due collections', async () => {
    const due = new Date(Date.now() + 8_000);
    // Every first call answers 503 and is retried, which keeps the burst in flight for seconds.
    const orders = await submitOrders('kill', 3, 20, [due], 'card_flaky');
    await eventually(
      async () => (await ledger()).filter((c) => c.orderRef.startsWith('kill-')).length,
      (n) => n >= 5,
      {
        what: 'the burst to be under way',
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    // Killed in the middle of the burst, not after it.
    expect(
      (await ledger()).filter((c) => c.orderRef.startsWith('kill-') && c.status === 'SETTLED').length,
    ).toBeLessThan(60);
    const cutShort: { killedAt: number; refs: string[] }[] = [];
    for (const victim of [cluster.workers[0], cluster.workers[1], cluster.workers[0]]) {
      await victim.kill();
      const killedAt = Date.now();
      const refs = await paymentCallsInFlight(
        temporal,
        orders.map((orderRef) => orderWorkflowId(tenantId, orderRef)),
      );
      cutShort.push({ killedAt, refs });
      await cluster.restart(victim);
    }
    await expectEachPaidOnce(orders, 60);
    // Whatever was in flight at a kill completed at the provider within 45 s of it: the other worker
    // took it over as soon as the dead one's heartbeats stopped (10 s, then the retry's backoff of up to
    // 8 s, and a loaded machine: 32 s seen once). Without heartbeats it waits out the call's 60 s.
    expect(cutShort[0].refs.length).toBeGreaterThan(0);
    const charged = new Map(
      (await ledger()).map((c) => [`${c.orderRef}/${c.instructionRef}`, Date.parse(c.createdAt)]),
    );
    for (const { killedAt, refs } of cutShort) {
      for (const ref of refs) expect(charged.get(ref)! - killedAt, ref).toBeLessThan(45_000);
    }
    expectNoCrash();
  }, 240_000);

  it('pays every instruction once across a restart of the Temporal server in the middle of a schedule, refunds and chargebacks in flight, the API answering 503 meanwhile', async () => {
    const now = Date.now();
    const orders = await submitOrders('temporal', 4, 6, [new Date(now + 6_000), new Date(now + 30_000)]);
    // Card payments charged back a few seconds after they settle: their callbacks come around the outage.
    const chargedBack = await submitOrders('temporal-cb', 1, 3, [new Date(now + 6_000)], 'card_chargeback');
    await eventually(
      async () => (await ledger()).filter((c) => c.kind === 'PAYMENT' && /^temporal-\d/.test(c.orderRef)).length,
      (n) => n === 12,
      {
        what: 'the first half of the schedule paid',
        timeoutMs: 60_000,
      },
    );
    await refundFirstHalf('temporal-0');
    const probe = probeApis();
    await cluster.temporal.stop();
    // The outage lasts while the probe calls: three seconds of it.
    await eventually(
      () => Promise.resolve(probe.answers.filter((a) => a.status === 503).length),
      (n) => n >= 2,
      { what: 'the API to notice', timeoutMs: 30_000 },
    );
    await cluster.restart(cluster.temporal);
    await eventually(
      () => Promise.resolve(probe.answers.at(-1)?.status),
      (status) => status === 200,
      { what: 'the API to serve again', timeoutMs: 60_000 },
    );
    const answers = await probe.stop();
    expectOnly200Or503WithRetryAfter(answers);
    expect(answers.some((a) => a.what === 'amend' && a.status === 503)).toBe(true);
    await expectEachPaidOnce(orders, 24);
    await expectChargedBack(chargedBack);
    await expectRefundedOnce('temporal-0');
    await expectMoneyAgrees([...orders, ...chargedBack]);
    expectNoCrash();
  }, 240_000);

  it('pays every instruction once across a restart of PostgreSQL while orders run, refunds and chargebacks around it, the API answering 503 meanwhile', async () => {
    const now = Date.now();
    const orders = await submitOrders('postgres', 4, 6, [new Date(now + 6_000), new Date(now + 25_000)]);
    // Charged back three seconds after they settle: their callbacks come while the database is away, and are sent again.
    const chargedBack = await submitOrders('postgres-cb', 1, 3, [new Date(now + 7_000)], 'card_chargeback');
    await eventually(
      async () => (await ledger()).filter((c) => c.kind === 'PAYMENT' && /^postgres-\d/.test(c.orderRef)).length,
      (n) => n === 12,
      {
        what: 'the first half of the schedule paid',
        timeoutMs: 60_000,
      },
    );
    await refundFirstHalf('postgres-0');
    const probe = probeApis();
    postgres.stop();
    await eventually(
      () => Promise.resolve(probe.answers.filter((a) => a.status === 503).length),
      (n) => n >= 2,
      { what: 'the API to notice', timeoutMs: 60_000 },
    );
    postgres.start();
    await eventually(
      () => Promise.resolve(probe.answers.slice(-2).map((a) => a.status)),
      (s) => s.length === 2 && s.every((x) => x === 200),
      {
        what: 'the API to serve again',
        timeoutMs: 60_000,
      },
    );
    const answers = await probe.stop();
    expectOnly200Or503WithRetryAfter(answers);
    await expectEachPaidOnce(orders, 24);
    await expectChargedBack(chargedBack);
    await expectRefundedOnce('postgres-0');
    await expectMoneyAgrees([...orders, ...chargedBack]);
    expectNoCrash();
  }, 240_000);
});
