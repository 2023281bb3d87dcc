import { randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import got from 'got';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../worker/create-activities.js';
import { buildOrder } from '../../orders/order-plans.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import { PaymentInstruction, PaymentRefund, type Tenant } from '../../db/entities/index.js';
import { isBusinessDay } from '../../domain/business-days.js';
import { openDatabase } from '../../db/orm.js';
import { orderWorkflowId, tenantHostedQueue } from '../../orders/contract/ids.js';
import type { PaymentOrderInput } from '../../orders/contract/messages.js';
import { freePort } from '../../observability/free-port.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../../orders/contract/search-attributes.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { workflowInputOf } from '../../orders/start-order.js';
import { bundlePaymentWorkflows } from '../../worker/create-worker.js';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  resolveInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
  orderStateQuery,
  payInstructionUpdate,
  createRefundUpdate,
  providerResultSignal,
  resolveRefundUpdate,
  refundResultSignal,
  retryInstructionUpdate,
  type OrderView,
} from '../../orders/contract/messages.js';
import { paymentOrderWorkflow, type PaymentOrderWorkflowInput } from '../../orders/workflow/payment-order.workflow.js';
import { eventually } from '../support/eventually.js';
import { recordHistory } from '../support/histories.js';
import { OrderEntity } from '../../orders/workflow/order-entity.js';
import { startHostileProvider, type HostileProvider } from '../support/hostile-provider.js';
import { startSandbox, type RunningSandbox } from '../support/sandbox.js';
import { startTimeSkippingEnvironment } from '../support/time-skipping.js';
import { quietTemporalLogs } from '../support/system.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { createTenantRows, resolvedTo } from '../support/tenant-rows.js';
import { lane } from '../support/lanes.js';

const TASK_QUEUE = 'payments-time-skipping';
const DAY_MS = 24 * 60 * 60 * 1000;

let env: TestWorkflowEnvironment;
let orm: MikroORM;
let sandbox: RunningSandbox;
let workflowBundle: WorkflowBundleWithSourceMap;
const masterKeys = { current: randomBytes(32).toString('base64') };

async function startTimeSkippingServer() {
  env = await startTimeSkippingEnvironment();
  // The Java server validates search attributes like a real one, so they are registered as in production.
  await registerSearchAttributes(env.connection, env.namespace ?? 'default', ORDER_SEARCH_ATTRIBUTES);
}

beforeAll(async () => {
  quietTemporalLogs();
  await startTimeSkippingServer();
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: inject('databasePoolSize') });
  sandbox = await startSandbox();
  workflowBundle = await bundlePaymentWorkflows(new DefaultLogger('ERROR'));
});

// The Java server's clock only moves forward, by years at a time between tests (it skips ahead ten years
// after some of them) and by each order's reversal window: once past 2150 a fresh server starts, so
// that every order's dates stay in the years an order may have (2000–2199).
beforeEach(async () => {
  if (new Date(await env.currentTimeMs()).getUTCFullYear() < 2150) return;
  await env.teardown();
  await startTimeSkippingServer();
});

afterAll(async () => {
  await sandbox?.close();
  await orm?.close();
  await env?.teardown();
});

type InstructionSpec = Partial<CreateOrderInput['instructions'][number]> & {
  instructionRef: string;
  /** How this one is paid, when not as the order's others. */
  resolution?: ReturnType<typeof resolvedTo>;
};

/** Stores the order as the API would, and returns the workflow input built from the stored row. */
async function storeOrder(
  tenantId: string,
  orderRef: string,
  specs: InstructionSpec[],
  resolution = resolvedTo('SANDBOX_CARD', 'CARD'),
  // No business days unless a test asks: the server's clock lands on any day of the week.
  tenant: Partial<Pick<Tenant, 'businessDayRule'>> = { businessDayRule: 'NONE' },
) {
  const open = new Date((await env.currentTimeMs()) + DAY_MS);
  const instructions = specs.map(({ resolution: _, ...spec }) => ({
    direction: 'DEBIT' as const,
    amount: '30.00',
    currency: 'EUR',
    country: 'FR',
    openDate: open.toISOString(),
    dueDate: new Date(open.getTime() + DAY_MS).toISOString(),
    financialInstrumentId: 'card_ok',
    ...spec,
  }));
  const em = orm.em.fork();
  const order = buildOrder(
    em,
    { id: tenantId, timeZone: null, dunningRetryDelaysDays: null, ...tenant },
    { orderRef, instructions },
    specs.map((spec) => spec.resolution ?? resolution),
  );
  await em.flush();
  return workflowInputOf(order, order.instructions.getItems());
}

/**
 * Fresh workers (a worker runs once) with real activities: projections to the test database,
 * payments over HTTP; the orders' task queue, and its queue for calls to tenant-hosted providers.
 */
async function createWorker(options: { sandboxUrl?: string; orm?: MikroORM } = {}) {
  const activities = createActivities({
    orm: options.orm ?? orm,
    masterKeys,
    apps: createAppRegistry(got, {
      sandboxUrl: options.sandboxUrl ?? sandbox.url,
      callbackBaseUrl: 'http://127.0.0.1:9',
      outboundUrls: { allowLoopbackHttp: true },
    }),
  });
  const orders = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowBundle,
    activities,
  });
  const tenantHosted = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: tenantHostedQueue(TASK_QUEUE),
    activities,
  });
  return { runUntil: <T>(fn: () => Promise<T>) => tenantHosted.runUntil(() => orders.runUntil(fn)) };
}

function start(input: PaymentOrderInput, extra: Partial<PaymentOrderWorkflowInput> = {}) {
  return env.client.workflow.start(paymentOrderWorkflow, {
    workflowId: orderWorkflowId(input.tenantId, input.orderRef),
    taskQueue: TASK_QUEUE,
    args: [{ ...input, ...extra }],
  });
}

/** Runs the order's workflow to its end, skipping time. */
async function runOrder(input: PaymentOrderInput, extra: Partial<PaymentOrderWorkflowInput> = {}) {
  const worker = await createWorker();
  return worker.runUntil(async () => (await start(input, extra)).result());
}

function waitFor(handle: WorkflowHandle, done: (view: OrderView) => boolean, what: string) {
  return eventually(() => handle.query(orderStateQuery), done, { what, timeoutMs: 60_000 });
}

/** Every run of a workflow, oldest first, following continue-as-new. */
async function runsOf(workflowId: string, firstRunId: string) {
  const runs: proto.temporal.api.history.v1.IHistory[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.push(history);
    runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/** The patches whose markers the order's (first) run recorded, in order. */
async function patchesOf(workflowId: string): Promise<string[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0];
    return data ? [defaultPayloadConverter.fromPayload<{ id: string }>(data).id] : [];
  });
}

/** The activities the order's (first) run scheduled, in order: retries of one are not scheduled again. */
async function scheduledActivities(input: PaymentOrderInput) {
  const history = await env.client.workflow.getHandle(orderWorkflowId(input.tenantId, input.orderRef)).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((name): name is string => name !== undefined && name !== 'projectOrder');
}

/**
 * A one-instruction order the tenant's own provider collected, its run still open for refunds: `then`
 * gets its handle and tenant while the worker runs, and the run is then awaited. Answers the tenant.
 */
async function collectedByOwnProvider(
  provider: HostileProvider,
  orderRef: string,
  instructionRef: string,
  then: (handle: WorkflowHandle, tenantId: string) => Promise<void>,
): Promise<string> {
  const { tenantId, input } = await orderAtOwnProvider(provider, orderRef, { instructionRef });
  const worker = await createWorker();
  await worker.runUntil(async () => {
    const handle = await start(input);
    await env.sleep(2 * DAY_MS);
    await waitFor(handle, (v) => v.status === 'COMPLETED', 'collected by its own provider');
    await then(handle, tenantId);
    // To its end while its worker runs: a run left waiting would hold up the server's clock for the tests after it.
    await handle.result();
  });
  return tenantId;
}

/** A one-instruction order (`p`, unless another is given) stored for a tenant paying through its own provider: its tenant and the workflow's input. */
async function orderAtOwnProvider(
  provider: HostileProvider,
  orderRef: string,
  instruction: Parameters<typeof storeOrder>[2][number] = { instructionRef: 'p' },
) {
  const { tenantId } = await createTenantRows(orm, masterKeys, [], provider);
  const input = await storeOrder(tenantId, orderRef, [instruction], resolvedTo('HTTP_CONNECTOR', 'CARD'));
  return { tenantId, input };
}

/** To the order's due date (time skips only while the test sleeps): its payment answered PENDING; its reference. */
async function paymentPendingAtProvider(handle: WorkflowHandle): Promise<string> {
  await env.sleep(2 * DAY_MS);
  const pending = await waitFor(handle, (v) => v.instructions[0].status === 'PROCESSING', 'the payment PENDING');
  return pending.instructions[0].providerRef!;
}

/** A refund of 10.00 EUR of `instructionRef` asked for, and answered PENDING by the provider: its read-model row, and its provider's reference. */
async function refundPendingAtProvider(handle: WorkflowHandle, instructionRef: string) {
  const refundId = randomUUID();
  const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
  await handle.executeUpdate(createRefundUpdate, { args: [{ instructionRef, refundId, amountMinor: '1000' }] });
  const pending = await eventually(stored, (r) => r?.providerRef != null, { what: 'the refund PENDING' });
  return { stored, refundRef: pending!.providerRef! };
}

/**
 * To the first status poll (of `path`, the payment or refund), its answer held while `callBack`
 * signals the provider's callback, then given as the provider then stands.
 */
async function calledBackWhileAsked(provider: HostileProvider, path: string, callBack: () => Promise<void>) {
  let release!: () => void;
  provider.behaviour.holdStatusAnswers = new Promise<void>((resolve) => (release = resolve));
  // Time skips only while the test sleeps: to the first status poll, 5 min after the PENDING answer.
  await env.sleep(5 * 60_000 + 1_000);
  const asked = () => provider.requests.filter((r) => r.method === 'GET' && r.path === path);
  await eventually(asked, (requests) => requests.length === 1, { what: 'the provider asked', timeoutMs: 30_000 });
  await callBack();
  release();
  provider.behaviour.holdStatusAnswers = undefined;
}

/**
 * An order whose payment its own provider answered PENDING, then asked about at its first status
 * poll: the provider answers `answer` (settled, with the money asked or other money, or declined)
 * while its callback `callback` comes. Until `then` holds of the instruction (by default: SETTLED),
 * then to the order's end.
 */
async function paymentCalledBackWhileAsked(
  provider: HostileProvider,
  orderRef: string,
  scenario: {
    answer: 'SETTLED' | 'other money' | 'DECLINED';
    callback: { status: 'SETTLED' } | { status: 'DECLINED'; code: string; retryable: boolean };
    then?: { is: (instruction: OrderView['instructions'][number]) => boolean; what: string };
  },
) {
  const { answer, callback, then = { is: (i) => i.status === 'SETTLED', what: 'the payment settled' } } = scenario;
  const { input } = await orderAtOwnProvider(provider, orderRef);
  const worker = await createWorker();
  let workflowId = '';
  const result = await worker.runUntil(async () => {
    const handle = await start(input);
    workflowId = handle.workflowId;
    const providerRef = await paymentPendingAtProvider(handle);
    provider.charges[0].status = answer === 'DECLINED' ? 'DECLINED' : 'SETTLED';
    if (answer === 'other money') provider.behaviour.answerOverrides = { amountMinor: '1', currency: 'EUR' };
    await calledBackWhileAsked(provider, `/payments/${providerRef}`, () =>
      handle.signal(providerResultSignal, { ...callback, providerRef, appId: 'HTTP_CONNECTOR' }),
    );
    await waitFor(handle, (v) => then.is(v.instructions[0]), then.what);
    provider.behaviour.answerOverrides = undefined;
    return handle.result();
  });
  return { result, workflowId };
}

/** To the first status poll, which the provider refuses for good (404): until the workflow has its failure. */
async function statusPollRefused(provider: HostileProvider, handle: WorkflowHandle) {
  provider.behaviour.refuseStatus = true;
  await env.sleep(5 * 60_000 + 1_000);
  await eventually(
    () => handle.fetchHistory(),
    (history) => (history.events ?? []).some((e) => e.activityTaskFailedEventAttributes),
    { what: 'the status poll refused', timeoutMs: 30_000 },
  );
}

/**
 * An update taken once the workflow is ready for it: refused meanwhile for `reason` (a call under
 * way; or the activity result it follows not yet applied, as an update that reaches the workflow in
 * the same task is validated first).
 */
async function takenOnce(update: () => Promise<unknown>, reason: RegExp) {
  await eventually(
    () =>
      update().then(
        () => true,
        (err: unknown) => {
          if (err instanceof WorkflowUpdateFailedError && reason.test((err.cause as Error).message)) return false;
          throw err;
        },
      ),
    (taken) => taken,
    { what: 'the update taken', timeoutMs: 60_000 },
  );
}

/** An update the workflow's validator refused, for the reason given. */
async function expectRefused(update: Promise<unknown>, reason: RegExp) {
  const error = await update.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  expect(((error as WorkflowUpdateFailedError).cause as Error).message).toMatch(reason);
}

/** A resolution offering `first`'s option (chosen), then `second`'s. */
function twoOptions(first: ReturnType<typeof resolvedTo>, second: ReturnType<typeof resolvedTo>) {
  return { ...first, options: [first.chosen, { ...second.chosen, priority: 2 }] };
}

async function record(name: string, workflowId: string) {
  if (!process.env.RECORD_HISTORIES) return;
  recordHistory(name, await env.client.workflow.getHandle(workflowId).fetchHistory());
}

describe('payment-order workflow on the time-skipping server', () => {
  it('runs a 12-instruction monthly schedule in order, in seconds of real time', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const start0 = (await env.currentTimeMs()) + DAY_MS;
    const specs = Array.from({ length: 12 }, (_, month) => {
      const open = new Date(start0);
      open.setUTCMonth(open.getUTCMonth() + month);
      return {
        instructionRef: `premium-${String(month + 1).padStart(2, '0')}`,
        amount: '49.99',
        currency: 'GBP',
        country: 'GB',
        openDate: open.toISOString(),
        dueDate: new Date(open.getTime() + 7 * DAY_MS).toISOString(),
      };
    });
    const input = await storeOrder(tenantId, 'monthly-12', specs);
    const startedAt = Date.now();
    const result = await runOrder(input);

    expect(Date.now() - startedAt).toBeLessThan(60_000);
    expect(result.status).toBe('COMPLETED');
    expect(result.instructions.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    result.instructions.forEach((i, index) => {
      expect(Date.parse(i.settledAt!)).toBeGreaterThanOrEqual(Date.parse(specs[index].dueDate));
      if (index > 0)
        expect(Date.parse(i.settledAt!)).toBeGreaterThan(Date.parse(result.instructions[index - 1].settledAt!));
    });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'monthly-12' });
    expect(payments.map((p) => p.idempotencyKey)).toEqual(
      specs.map((s) => `${tenantId}:monthly-12:${s.instructionRef}:1`),
    );
    const stored = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
    expect(stored.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    expect(stored.every((i) => i.amountMinor === 4999n)).toBe(true);
    await record('monthly-schedule', orderWorkflowId(tenantId, 'monthly-12'));
  });

  it('retries an insufficient-funds collection on the dunning schedule, then fails it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'dunning-1', [
      { instructionRef: 'premium-1', amount: '120.00', financialInstrumentId: 'card_insufficient_funds' },
    ]);
    const result = await runOrder(input);
    expect(result.instructions[0]).toMatchObject({ status: 'FAILED', attempts: 4, failureCode: 'insufficient_funds' });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'dunning-1' });
    // Each retry after a decline is a new payment attempt with its own idempotency key.
    expect(payments.map((p) => p.idempotencyKey.split(':').at(-1))).toEqual(['1', '2', '3', '4']);
    expect(payments.every((p) => p.status === 'DECLINED')).toBe(true);
    await record('dunning-exhausted', orderWorkflowId(tenantId, 'dunning-1'));
  });

  it('continues as new in the middle of a dunning wait, and carries on where it was', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'dunning-can', [
      { instructionRef: 'declined', financialInstrumentId: 'card_insufficient_funds' },
      {
        instructionRef: 'later',
        openDate: new Date((await env.currentTimeMs()) + 20 * DAY_MS).toISOString(),
        dueDate: new Date((await env.currentTimeMs()) + 21 * DAY_MS).toISOString(),
      },
    ]);
    const worker = await createWorker();
    const { view, runs } = await worker.runUntil(async () => {
      const handle = await start(input, { continueAsNewAfterEvents: 40 });
      const finished = await handle.result();
      return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
    });
    expect(runs.length).toBeGreaterThan(1);
    expect(view.instructions.map((i) => [i.instructionRef, i.status, i.attempts])).toEqual([
      ['declined', 'FAILED', 4],
      ['later', 'SETTLED', 1],
    ]);
    // A run ended while the declined instruction waited between retries, and the next picked up its dunning position.
    const payments = await sandbox.ledger({ tenantId, orderRef: 'dunning-can' });
    expect(
      payments.filter((p) => p.instructionRef === 'declined').map((p) => p.idempotencyKey.split(':').at(-1)),
    ).toEqual(['1', '2', '3', '4']);
  });

  it('continues as new with a payment pending at its bank, an unanswered call and a dunning wait in flight, each resumed', async () => {
    const provider = await startHostileProvider({ loseAnswers: 8 });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, undefined, provider);
      // A minute apart: timers firing at one instant make the Java test server lose a workflow task.
      const start0 = (await env.currentTimeMs()) + DAY_MS;
      const at = (minutes: number) => new Date(start0 + minutes * 60_000).toISOString();
      const input = await storeOrder(tenantId, 'can-in-flight', [
        {
          instructionRef: 'bank',
          openDate: at(0),
          dueDate: at(1),
          financialInstrumentId: 'bank_no_callback',
          resolution: resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
        },
        {
          instructionRef: 'own',
          openDate: at(2),
          dueDate: at(3),
          financialInstrumentId: 'card_1',
          resolution: resolvedTo('HTTP_CONNECTOR', 'CARD'),
        },
        {
          instructionRef: 'card',
          openDate: at(4),
          dueDate: at(5),
          financialInstrumentId: 'card_insufficient_funds',
        },
      ]);
      const worker = await createWorker();
      const { view, runs } = await worker.runUntil(async () => {
        const handle = await start(input, { continueAsNewAfterEvents: 30 });
        const finished = await handle.result();
        return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
      });
      expect(view.instructions.map((i) => [i.instructionRef, i.status])).toEqual([
        ['bank', 'SETTLED'],
        ['own', 'SETTLED'],
        ['card', 'FAILED'],
      ]);
      // Some run handed on the bank payment awaiting its provider, and the call that went unanswered.
      const carried = runs.slice(1).map((run) => {
        const [input] = (run.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? []).map(
          (p) => JSON.parse(Buffer.from(p.data!).toString()) as PaymentOrderWorkflowInput,
        );
        return input.continued!.instructions;
      });
      expect(
        carried.some((machines) => machines.find((m) => m.plan.instructionRef === 'bank')?.pending?.providerRef),
      ).toBe(true);
      expect(carried.some((machines) => machines.find((m) => m.plan.instructionRef === 'own')?.unanswered)).toBe(true);
      // Each resumed where it was: one bank payment, one charge at the tenant's own provider found by
      // its look-up (never called again), and the declined card dunned under keys 1 to 4.
      const payments = await sandbox.ledger({ tenantId, orderRef: 'can-in-flight' });
      expect(payments.filter((p) => p.instructionRef === 'bank')).toHaveLength(1);
      expect(
        payments.filter((p) => p.instructionRef === 'card').map((p) => p.idempotencyKey.split(':').at(-1)),
      ).toEqual(['1', '2', '3', '4']);
      expect(provider.charges).toHaveLength(1);
      expect(provider.lookups).toHaveLength(1);
      expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
      recordHistory('continue-as-new-in-flight', runs[0]);
    } finally {
      await provider.close();
    }
  });

  it('resumes from a carried state a pay-now requested and a LATE retry, with the keys they had', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'can-crafted', [
      { instructionRef: 'pay-now' },
      { instructionRef: 'retry' },
    ]);
    const now = await env.currentTimeMs();
    // What a run hands on when it ends just after a customer's payment was taken, and during a dunning wait.
    const state = OrderEntity.initialState(input);
    const [payNow, retry] = state.instructions;
    Object.assign(payNow, { status: 'OPEN', toldStatus: 'OPEN', payNow: true, customerPaying: true });
    Object.assign(retry, {
      status: 'LATE',
      toldStatus: 'LATE',
      attempts: 1,
      declines: 1,
      keyAttempt: 2,
      retryAt: new Date(now + 3 * DAY_MS).toISOString(),
      failureCode: 'insufficient_funds',
    });
    Object.assign(state, { orderEvents: ['order.created'], dirty: [], orderDirty: false });
    const worker = await createWorker();
    const done = await worker.runUntil(async () =>
      (await start({ ...input, instructions: [] }, { continued: state })).result(),
    );
    expect(done.instructions.map((i) => [i.instructionRef, i.status, i.attempts])).toEqual([
      ['pay-now', 'SETTLED', 1],
      ['retry', 'SETTLED', 2],
    ]);
    const payments = await sandbox.ledger({ tenantId, orderRef: 'can-crafted' });
    expect(payments.map((p) => p.idempotencyKey.split(':').slice(-2).join(':')).sort()).toEqual([
      'pay-now:1',
      'retry:2',
    ]);
    // The customer's payment went out at once, long before its due date; the retry waited for its time.
    const byRef = new Map(done.instructions.map((i) => [i.instructionRef, Date.parse(i.settledAt!)]));
    expect(byRef.get('pay-now')!).toBeLessThan(Date.parse(input.instructions[0].openAt));
    expect(byRef.get('retry')!).toBeGreaterThanOrEqual(now + 3 * DAY_MS);
  });

  it('answers an update retried after a continue-as-new as taken: neither refused nor made twice', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'retried-across-runs', [{ instructionRef: 'a' }, { instructionRef: 'b' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      // About 14 events once started and 8 more per change: the second change finds the history long.
      const handle = await start(input, { continueAsNewAfterEvents: 20 });
      const cancelA = { args: [{ instructionRef: 'a' }] as [{ instructionRef: string }], updateId: 'api:cancel-a' };
      await handle.executeUpdate(cancelInstructionUpdate, cancelA);
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'b', amendment: { amountMinor: '1234' } }],
        updateId: 'api:amend-b',
      });
      const latest = env.client.workflow.getHandle(handle.workflowId);
      await eventually(
        () => latest.describe(),
        (d) => d.runId !== handle.firstExecutionRunId && d.status.name === 'RUNNING',
        { what: 'a continued run' },
      );
      const before = await latest.query(orderStateQuery);
      // The first answer lost, the client sends the cancel again under its id, to a run that never took it.
      await expect(latest.executeUpdate(cancelInstructionUpdate, cancelA)).resolves.toEqual({ projected: true });
      expect(await latest.query(orderStateQuery)).toEqual(before);
      expect(before.instructions.map((i) => [i.instructionRef, i.status, i.amountMinor])).toEqual([
        ['a', 'CANCELLED', '3000'],
        ['b', 'PENDING', '1234'],
      ]);
      // A cancel of its own (another id) is still refused: only the repeat skips the validator.
      await expectRefused(
        latest.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'a' }], updateId: 'api:cancel-a-2' }),
        /can no longer be cancelled/,
      );
      await latest.terminate('test over');
    });
  });

  it('asks an unanswering provider about the same key before paying, so the customer pays once', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'outage-1', [{ instructionRef: 'premium-1' }]);
    // A port with nothing listening yet: the provider is down when the instruction falls due.
    const port = await freePort();
    const worker = await createWorker({ sandboxUrl: `http://127.0.0.1:${port}` });
    let revived: RunningSandbox | undefined;
    try {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        const finished = handle.result();
        const late = await waitFor(
          handle,
          (v) => v.instructions[0].status === 'LATE',
          'instruction LATE after the provider stayed down',
        );
        expect(late.instructions[0].failureCode).toBe('provider_unavailable');
        revived = await startSandbox({ port });
        return finished;
      });
      expect(result.instructions[0].status).toBe('SETTLED');
      expect(result.instructions[0].attempts).toBeGreaterThanOrEqual(2);
      const payments = await revived!.ledger({ tenantId, orderRef: 'outage-1' });
      expect(payments.map((p) => p.idempotencyKey)).toEqual([`${tenantId}:outage-1:premium-1:1`]);
    } finally {
      await revived?.close();
    }
  });

  it('settles from the look-up when the provider took the charge its unanswered call made: no second call', async () => {
    const provider = await startHostileProvider({ loseAnswers: 8 });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'lookup-finds');
      const worker = await createWorker();
      const result = await worker.runUntil(async () => (await start(input)).result());
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([`${tenantId}:lookup-finds:p:1`]);
      expect(provider.lookups).toEqual([`${tenantId}:lookup-finds:p:1`]);
      // Eight tries of the call, all unanswered; then the look-up, and nothing after it.
      expect(provider.requests.map((r) => r.method)).toEqual([...Array<string>(8).fill('POST'), 'GET']);
      expect(await scheduledActivities(input)).toEqual(['executePayment', 'lookupPayment']);
      await record('lookup-finds', orderWorkflowId(tenantId, 'lookup-finds'));
    } finally {
      await provider.close();
    }
  });

  it('calls again under the same key when the look-up finds no charge, and the customer pays once', async () => {
    const provider = await startHostileProvider({ hangWithoutCharging: 8 });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'lookup-none');
      const worker = await createWorker();
      const result = await worker.runUntil(async () => (await start(input)).result());
      expect(result.instructions[0].status).toBe('SETTLED');
      const key = `${tenantId}:lookup-none:p:1`;
      expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
      expect(provider.lookups).toEqual([key]);
      expect(provider.requests.map((r) => `${r.method} ${r.idempotencyKey ?? ''}`)).toEqual([
        ...Array<string>(8).fill(`POST ${key}`),
        'GET ',
        `POST ${key}`,
      ]);
      expect(await scheduledActivities(input)).toEqual(['executePayment', 'lookupPayment', 'executePayment']);
      await record('lookup-none', orderWorkflowId(tenantId, 'lookup-none'));
    } finally {
      await provider.close();
    }
  });

  it('keeps the key of an unanswered call when the provider will not say what it did (look-up 405): outcome unknown', async () => {
    const provider = await startHostileProvider({ loseAnswers: 8, lookup: 405 });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'lookup-405');
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        // Awaiting the result lets time skip (retries, the hourly look-up) while the test watches.
        const finished = handle.result().catch(() => undefined);
        const unknown = await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'outcome_unknown',
          'the refused look-up leaves the outcome unknown',
        );
        // LATE, or being asked again already (time runs fast here): either way, not to be changed.
        expect(['LATE', 'PROCESSING']).toContain(unknown.instructions[0].status);
        await expectRefused(
          handle.executeUpdate(amendInstructionUpdate, {
            args: [{ instructionRef: 'p', amendment: { financialInstrumentId: 'card_other' } }],
          }),
          /may have moved money|is being paid/,
        );
        // An hour later: asked again, under the same key, and never paid anew.
        await eventually(
          () => Promise.resolve(provider.lookups.length),
          (n) => n >= 2,
          { what: 'asked again an hour later', timeoutMs: 60_000 },
        );
        expect(provider.charges).toHaveLength(1);
        expect(new Set(provider.lookups)).toEqual(new Set([`${tenantId}:lookup-405:p:1`]));
        expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
        // Only the provider's own answer under the key ends it: it settles, never charged again.
        provider.behaviour.lookup = 'answer';
        await finished;
        const done = await handle.query(orderStateQuery);
        expect(done.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
        expect(provider.charges).toHaveLength(1);
        expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
        await record('lookup-refused', handle.workflowId);
      });
    } finally {
      await provider.close();
    }
  });

  it('counts a settlement a tenant admin resolves as collected, in its read model', async () => {
    const provider = await startHostileProvider({ loseAnswers: 8, lookup: 405 });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'resolved-settled', {
        instructionRef: 'p',
        amount: '25.00',
      });
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        const finished = handle.result().catch(() => undefined);
        await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'outcome_unknown',
          'the refused look-up leaves the outcome unknown',
        );
        const [charge] = provider.charges;
        // Refused while the provider is being asked again (time runs fast here): resolved once that call has ended.
        await takenOnce(
          () =>
            handle.executeUpdate(resolveInstructionUpdate, {
              args: [{ instructionRef: 'p', outcome: 'SETTLED', providerRef: charge.providerRef }],
            }),
          /right now/,
        );
        const row = await eventually(
          () => orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'p' }),
          (i) => i.status === 'SETTLED',
          { what: 'the read model shows it settled', timeoutMs: 30_000 },
        );
        expect(row).toMatchObject({ providerRef: charge.providerRef, settledAmountMinor: 2500n });
        expect(provider.charges).toHaveLength(1);
        // Let it end on its own (its reversal window): terminated with a call out, it left the test
        // server's time-skipping locked for the tests after it.
        await finished;
        await record('resolved-settled-counted', handle.workflowId);
      });
    } finally {
      await provider.close();
    }
  });

  it('takes a malformed answer (a reference of 200 characters) for no answer: same key, and the read model never stuck', async () => {
    const provider = await startHostileProvider({ answerOverrides: { providerRef: 'x'.repeat(200) } });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'malformed');
      const worker = await createWorker();
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        const finished = handle.result();
        await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'provider_unavailable',
          'unanswered after malformed answers',
        );
        provider.behaviour.answerOverrides = undefined;
        return finished;
      });
      // Settled from the look-up once the provider answered properly: the charge it took the first time.
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges).toHaveLength(1);
      const [row] = await orm.em.fork().find(PaymentInstruction, { tenantId, instructionRef: 'p' });
      expect(row).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
    } finally {
      await provider.close();
    }
  });

  it.each(['answered at once', 'answered PENDING, then asked'] as const)(
    'believes no settlement of other money than asked (%s): outcome unknown, the key kept, until the provider says it right',
    async (how) => {
      const pending = how === 'answered PENDING, then asked';
      const provider = await startHostileProvider({ outcome: pending ? 'PENDING' : 'SETTLED' });
      try {
        const orderRef = pending ? 'other-money-pending' : 'other-money';
        const { input } = await orderAtOwnProvider(provider, orderRef);
        const worker = await createWorker();
        // 0.01 EUR settled of the 30.00 EUR asked.
        const otherMoney = { amountMinor: '1', currency: 'EUR' };
        if (!pending) provider.behaviour.answerOverrides = otherMoney;
        const result = await worker.runUntil(async () => {
          const handle = await start(input);
          const finished = handle.result();
          if (pending) {
            await waitFor(handle, (v) => v.instructions[0].status === 'PROCESSING', 'the payment PENDING');
            provider.charges[0].status = 'SETTLED';
            provider.behaviour.answerOverrides = otherMoney;
          }
          // LATE between its look-ups (PROCESSING while one is under way).
          await waitFor(
            handle,
            (v) => v.instructions[0].failureCode === 'outcome_unknown' && v.instructions[0].status === 'LATE',
            'the outcome unknown after a settlement of other money',
          );
          provider.behaviour.answerOverrides = undefined;
          return finished;
        });
        // Asked about under the same key once the provider stated no other money: the one charge.
        expect(result.instructions[0]).toMatchObject({
          status: 'SETTLED',
          providerRef: provider.charges[0].providerRef,
        });
        expect(provider.charges).toHaveLength(1);
        expect(provider.lookups.length).toBeGreaterThan(0);
        expect(new Set(provider.lookups)).toEqual(new Set([provider.charges[0].idempotencyKey]));
      } finally {
        await provider.close();
      }
    },
  );

  it('takes a chargeback that came while its payment’s call was under way, once the call is answered', async () => {
    const provider = await startHostileProvider({});
    try {
      const { input } = await orderAtOwnProvider(provider, 'charged-back-early');
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        let release!: () => void;
        provider.behaviour.holdPaymentAnswers = new Promise<void>((resolve) => (release = resolve));
        // To its due date: the provider takes the charge and holds its answer.
        await env.sleep(2 * DAY_MS);
        const [charge] = await eventually(
          () => provider.charges,
          (charges) => charges.length === 1,
          { what: 'the charge taken', timeoutMs: 30_000 },
        );
        // As a busy worker meets them: the chargeback first, then the call's answer.
        await handle.signal(providerResultSignal, {
          status: 'RETURNED',
          providerRef: charge.providerRef,
          kind: 'CHARGEBACK',
          code: 'fraudulent',
          appId: 'HTTP_CONNECTOR',
        });
        release();
        const view = await waitFor(
          handle,
          (v) => v.instructions[0].failureCode?.startsWith('charged_back:') === true,
          'the chargeback taken',
        );
        expect(view.instructions[0]).toMatchObject({
          status: 'FAILED',
          providerRef: charge.providerRef,
          failureCode: 'charged_back:fraudulent',
        });
        await record('charged-back-early', handle.workflowId);
        // To its end while its worker runs: a run left waiting would hold up the server's clock for the tests after it.
        await handle.result();
      });
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('asks again at once about a payment of unknown outcome (answered with other money) when its callback comes', async () => {
    const provider = await startHostileProvider({ answerOverrides: { amountMinor: '1', currency: 'EUR' } });
    try {
      const { input } = await orderAtOwnProvider(provider, 'unknown-called-back');
      const worker = await createWorker();
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        // To its due date: 0.01 EUR settled of the 30.00 EUR asked, so its outcome is unknown.
        await env.sleep(2 * DAY_MS);
        const unknown = await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'outcome_unknown' && v.instructions[0].status === 'LATE',
          'the outcome unknown after a settlement of other money',
        );
        // The reference the provider stated is kept, though its money is not believed.
        const [charge] = provider.charges;
        expect(unknown.instructions[0].providerRef).toBe(charge.providerRef);
        provider.behaviour.answerOverrides = undefined;
        await handle.signal(providerResultSignal, {
          status: 'SETTLED',
          providerRef: charge.providerRef,
          appId: 'HTTP_CONNECTOR',
        });
        // Time skips only while the test sleeps (or awaits the result), so not by the hourly look-up: asked at once.
        await waitFor(
          handle,
          (v) => v.instructions[0].status === 'SETTLED',
          'settled by the look-up the callback prompted',
        );
        expect(provider.lookups).toEqual([charge.idempotencyKey]);
        return handle.result();
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('settles by a callback that came while the provider was asked, though its answer then stated other money', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result } = await paymentCalledBackWhileAsked(provider, 'callback-while-asked', {
        answer: 'other money',
        callback: { status: 'SETTLED' },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(result.instructions[0].failureCode).toBeUndefined();
      expect(provider.lookups).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  it('keeps the key of a payment declined by a callback that came while the provider was asked, its answer then settled with other money', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result, workflowId } = await paymentCalledBackWhileAsked(provider, 'declined-while-asked', {
        answer: 'other money',
        callback: { status: 'DECLINED', code: 'insufficient_funds', retryable: true },
        // Money moved, by the answer: not declined (a new key would charge again), but unknown.
        then: { is: (i) => i.failureCode === 'outcome_unknown', what: 'the outcome unknown' },
      });
      await record('declined-while-asked', workflowId);
      // Asked again under its key an hour later, and settled by the provider's answer to that.
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.lookups).toEqual([provider.charges[0].idempotencyKey]);
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('settles by a callback that came while the provider was asked, though its answer then said declined', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result } = await paymentCalledBackWhileAsked(provider, 'settled-while-asked', {
        answer: 'DECLINED',
        callback: { status: 'SETTLED' },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('settles by its answer of the money asked, though a callback that came while it was asked said declined, as before: no patch marker', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result, workflowId } = await paymentCalledBackWhileAsked(provider, 'answer-settled-while-asked', {
        answer: 'SETTLED',
        callback: { status: 'DECLINED', code: 'insufficient_funds', retryable: true },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      // Unchanged by the patch for a contrary callback, so no marker (and no visibility write) for it.
      expect(await patchesOf(workflowId)).not.toContain('money-moved-beats-not-moved');
    } finally {
      await provider.close();
    }
  });

  it('keeps a PENDING payment whose provider refuses to say how it ended waiting for its callback, which settles it', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'refused-then-called-back');
      const worker = await createWorker();
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        const providerRef = await paymentPendingAtProvider(handle);
        await statusPollRefused(provider, handle);
        // Shown as one a tenant admin may resolve, in the read model, not only in the worker's log.
        const shown = await eventually(
          () => orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'p' }),
          (row) => row.failureCode != null,
          { what: 'the refusal shown', timeoutMs: 30_000 },
        );
        expect(shown).toMatchObject({ status: 'PROCESSING', failureCode: 'status_refused:provider_rejected:http_404' });
        await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef, appId: 'HTTP_CONNECTOR' });
        return handle.result();
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      // The refusal is no longer shown once its callback ended it.
      expect(result.instructions[0].failureCode).toBeUndefined();
      expect(provider.lookups).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  it('lets a tenant admin resolve a PENDING payment once its provider refuses to say how it ended, and not before', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { input } = await orderAtOwnProvider(provider, 'refused-then-resolved');
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentPendingAtProvider(handle);
        const resolve = () =>
          handle.executeUpdate(resolveInstructionUpdate, { args: [{ instructionRef: 'p', outcome: 'NOT_PAID' }] });
        // PENDING at its provider, which will say how it ends.
        await expectRefused(resolve(), /has no payment of unknown outcome to resolve/);
        await statusPollRefused(provider, handle);
        await takenOnce(resolve, /no payment of unknown outcome|right now/);
        const view = await handle.query(orderStateQuery);
        expect(view.instructions[0]).toMatchObject({ status: 'LATE', failureCode: 'resolved_not_paid' });
        await handle.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'p' }] });
        await handle.result();
        await record('pending-refused-resolved', handle.workflowId);
      });
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('reads no more than 64 KB of a provider’s answer that does not end, and keeps the key until it answers', async () => {
    const provider = await startHostileProvider({ padAnswersWith: 100 * 1024 * 1024 });
    try {
      const { tenantId, input } = await orderAtOwnProvider(provider, 'huge');
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        const finished = handle.result().catch(() => undefined);
        await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'provider_unavailable',
          'unanswered after huge answers',
        );
        provider.behaviour.padAnswersWith = 0;
        await finished;
      });
      expect(provider.charges).toHaveLength(1);
      expect(new Set(provider.requests.filter((r) => r.method === 'POST').map((r) => r.idempotencyKey))).toEqual(
        new Set([`${tenantId}:huge:p:1`]),
      );
      // Each answer was given up early: of 100 MB, what the socket's buffers took at most.
      expect(provider.paddingSent.length).toBeGreaterThanOrEqual(8);
      for (const sent of provider.paddingSent) expect(sent).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await provider.close();
    }
  });

  it('settles a PENDING payment by its callback, and a repeated callback changes nothing', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'bank-cb',
      [{ instructionRef: 'debit-1', financialInstrumentId: 'bank_ok' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      // Time runs on its own until the result is awaited: the order stays PENDING at the provider meanwhile.
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      expect(pending.instructions[0].status).toBe('PROCESSING');
      const providerRef = pending.instructions[0].providerRef!;
      await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef });
      await handle.signal(providerResultSignal, {
        status: 'DECLINED',
        providerRef,
        code: 'late_duplicate',
        retryable: false,
      });
      const done = await handle.result();
      expect(done.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef, attempts: 1 });
      await record('bank-callback', handle.workflowId);
    });
  });

  it('takes a PENDING payment’s result only from the app paying it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'foreign-cb',
      [{ instructionRef: 'debit-1', financialInstrumentId: 'bank_no_callback' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      const providerRef = pending.instructions[0].providerRef!;
      // Another app's word on this payment, then its own app's: only the second counts.
      await handle.signal(providerResultSignal, {
        status: 'DECLINED',
        providerRef,
        code: 'account_closed',
        retryable: false,
        appId: 'HTTP_CONNECTOR',
      });
      await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef, appId: 'SANDBOX_BANK' });
      const done = await handle.result();
      expect(done.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef, attempts: 1 });
      await record('foreign-callback', handle.workflowId);
    });
  });

  it('asks the provider for the result of a PENDING payment whose callback never comes', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'silent-bank',
      [{ instructionRef: 'debit-1', amount: '80.00', country: 'NL', financialInstrumentId: 'bank_no_callback' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const result = await runOrder(input);
    expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', appId: 'SANDBOX_BANK', attempts: 1 });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'silent-bank' });
    expect(payments.map((p) => [p.status, p.appId])).toEqual([['SETTLED', 'SANDBOX_BANK']]);
    expect(
      Date.parse(result.instructions[0].settledAt!) - Date.parse(input.instructions[0].dueAt),
    ).toBeGreaterThanOrEqual(5 * 60_000);
  });

  it('cancels an instruction waiting LATE, and the order with it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'late-cancel', [
      { instructionRef: 'no-instrument', financialInstrumentId: undefined },
    ]);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(3 * DAY_MS);
      await waitFor(handle, (v) => v.instructions[0].status === 'LATE', 'LATE without an instrument');
      await handle.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'no-instrument' }] });
      return handle.result();
    });
    expect(result).toMatchObject({
      status: 'CANCELLED',
      instructions: [{ status: 'CANCELLED', failureCode: 'no_financial_instrument' }],
    });
    expect(await sandbox.ledger({ tenantId, orderRef: 'late-cancel' })).toEqual([]);
    await record('cancel-late', orderWorkflowId(tenantId, 'late-cancel'));
  });

  it('re-plans an amended due date at once: moved later it does not fire at the old date, moved earlier it fires at the new one', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'amend-race', [
      { instructionRef: 'later' },
      { instructionRef: 'earlier', dueDate: new Date((await env.currentTimeMs()) + 30 * DAY_MS).toISOString() },
    ]);
    const oldDue = Date.parse(input.instructions[0].dueAt);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      // Up to a minute before the due date, then the race: the amendment lands first.
      await env.sleep(oldDue - (await env.currentTimeMs()) - 60_000);
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'later', amendment: { dueAt: new Date(oldDue + 10 * DAY_MS).toISOString() } }],
      });
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'earlier', amendment: { dueAt: new Date(oldDue + DAY_MS).toISOString() } }],
      });
      await expectRefused(
        handle.executeUpdate(amendInstructionUpdate, {
          args: [{ instructionRef: 'later', amendment: { openAt: new Date(oldDue).toISOString() } }],
        }),
        /open already/,
      );
      return handle.result();
    });
    const [later, earlier] = result.instructions;
    expect(Date.parse(later.settledAt!)).toBeGreaterThanOrEqual(oldDue + 10 * DAY_MS);
    expect(Date.parse(earlier.settledAt!)).toBeGreaterThanOrEqual(oldDue + DAY_MS);
    expect(Date.parse(earlier.settledAt!)).toBeLessThan(oldDue + 2 * DAY_MS);
    expect((await sandbox.ledger({ tenantId, orderRef: 'amend-race' })).map((p) => p.instructionRef)).toEqual([
      'earlier',
      'later',
    ]);
    await record('amend', orderWorkflowId(tenantId, 'amend-race'));
  });

  it('charges a bank debit due on a Sunday on the Monday, at the time it was due', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    // The first Sunday at least three days ahead whose Monday is a business day in France.
    let sunday = new Date((await env.currentTimeMs()) + 3 * DAY_MS);
    sunday.setUTCHours(10, 0, 0, 0);
    const day = (at: Date) => at.toISOString().slice(0, 10);
    while (sunday.getUTCDay() !== 0 || !isBusinessDay(day(new Date(sunday.getTime() + DAY_MS)), 'FR'))
      sunday = new Date(sunday.getTime() + DAY_MS);
    const monday = sunday.getTime() + DAY_MS;
    const input = await storeOrder(
      tenantId,
      'sunday',
      [{ instructionRef: 'debit', dueDate: sunday.toISOString(), financialInstrumentId: 'bank_ok' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
      { businessDayRule: 'FOLLOWING' },
    );
    expect(input.instructions[0]).toMatchObject({
      dueAt: sunday.toISOString(),
      chargeAt: new Date(monday).toISOString(),
    });
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      // Sunday passes with the instruction OPEN and nothing asked of the bank.
      await env.sleep(sunday.getTime() + 60 * 60_000 - (await env.currentTimeMs()));
      const sundayView = await waitFor(handle, (v) => v.instructions[0].status === 'OPEN', 'open on the Sunday');
      expect(sundayView.instructions[0]).toMatchObject({ attempts: 0, nextActionAt: new Date(monday).toISOString() });
      await env.sleep(DAY_MS);
      const called = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the bank called');
      await handle.signal(providerResultSignal, {
        status: 'SETTLED',
        providerRef: called.instructions[0].providerRef!,
      });
      await handle.result();
    });
    const history = await env.client.workflow.getHandle(orderWorkflowId(tenantId, 'sunday')).fetchHistory();
    const call = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executePayment',
    )!;
    const calledAt = Number(call.eventTime!.seconds) * 1000;
    expect(calledAt).toBeGreaterThanOrEqual(monday);
    expect(calledAt).toBeLessThan(monday + 60 * 60_000);
  });

  it('takes instructions added to a live order, and a customer’s early payment in the open window', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'add-pay', [
      {
        instructionRef: 'first',
        dueDate: new Date((await env.currentTimeMs()) + 40 * DAY_MS).toISOString(),
        financialInstrumentId: undefined,
      },
    ]);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      await waitFor(handle, (v) => v.instructions[0].status === 'OPEN', 'the first instruction OPEN');
      const now = await env.currentTimeMs();
      const plan = {
        ...input.instructions[0],
        instructionId: randomUUID(),
        instructionRef: 'second',
        financialInstrumentId: 'card_ok',
        openAt: new Date(now + DAY_MS).toISOString(),
        dueAt: new Date(now + 2 * DAY_MS).toISOString(),
      };
      await handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: { added: 'yes' } }] });
      await expectRefused(handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: {} }] }), /already/);
      // Paid now, with the card option, weeks before its due date.
      await handle.executeUpdate(payInstructionUpdate, {
        args: [
          { instructionRef: 'first', appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
        ],
      });
      const paid = await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the early payment');
      expect(Date.parse(paid.instructions[0].settledAt!)).toBeLessThan(Date.parse(input.instructions[0].dueAt));
      await expectRefused(
        handle.executeUpdate(payInstructionUpdate, {
          args: [
            { instructionRef: 'first', appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
          ],
        }),
        /SETTLED/,
      );
      return handle.result();
    });
    expect(result.instructions.map((i) => [i.instructionRef, i.status])).toEqual([
      ['first', 'SETTLED'],
      ['second', 'SETTLED'],
    ]);
    const rows = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
    expect(rows.map((r) => [r.instructionRef, r.status, r.position])).toEqual([
      ['first', 'SETTLED', 0],
      ['second', 'SETTLED', 1],
    ]);
    expect(rows[1].metadata).toEqual({ added: 'yes' });
    await record('add-and-pay', orderWorkflowId(tenantId, 'add-pay'));
  });

  it('refuses to cancel an order while a payment is under way', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'busy',
      [
        { instructionRef: 'debit-1', financialInstrumentId: 'bank_ok' },
        { instructionRef: 'debit-2', dueDate: new Date((await env.currentTimeMs()) + 90 * DAY_MS).toISOString() },
      ],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      await expectRefused(handle.executeUpdate(cancelOrderUpdate, { args: [] }), /being paid/);
      await expectRefused(
        handle.executeUpdate(amendInstructionUpdate, {
          args: [{ instructionRef: 'debit-1', amendment: { amountMinor: '1' } }],
        }),
        /being paid/,
      );
      await handle.signal(providerResultSignal, {
        status: 'SETTLED',
        providerRef: pending.instructions[0].providerRef!,
      });
      await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the first settled');
      await handle.executeUpdate(cancelOrderUpdate, { args: [] });
      const done = await handle.result();
      expect(done).toMatchObject({
        status: 'CANCELLED',
        instructions: [{ status: 'SETTLED' }, { status: 'CANCELLED' }],
      });
    });
  });

  it('refuses an instruction added in the same moment as the order is cancelled: nothing runs in a cancelled order', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'cancel-then-add', [{ instructionRef: 'debit-1' }]);
    const [added] = (await storeOrder(tenantId, 'cancel-then-add-plan', [{ instructionRef: 'debit-2' }])).instructions;
    // Both changes wait for the workflow's first task: the worker starts only once both are sent.
    const handle = await start(input);
    const cancelled = handle.executeUpdate(cancelOrderUpdate, { args: [] });
    const add = handle.executeUpdate(addInstructionUpdate, { args: [{ plan: added, metadata: {} }] }).then(
      () => undefined,
      (err: unknown) => err,
    );
    // A later request on the same connection: once it is answered, the server holds both updates.
    await handle.describe();
    const worker = await createWorker();
    const done = await worker.runUntil(async () => {
      await cancelled;
      const refused = await add;
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(((refused as WorkflowUpdateFailedError).cause as Error).message).toMatch(/being cancelled/);
      return handle.result();
    });
    expect(done).toMatchObject({
      status: 'CANCELLED',
      instructions: [{ instructionRef: 'debit-1', status: 'CANCELLED' }],
    });
  });

  it('collects through a database outage, and the read model catches up when it is back', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const later = new Date((await env.currentTimeMs()) + 10 * DAY_MS).toISOString();
    const input = await storeOrder(tenantId, 'db-outage', [
      { instructionRef: 'before' },
      { instructionRef: 'during', dueDate: later },
    ]);
    const proxy = await startTcpProxy(new URL(lane().databaseUrl));
    // Its lost connections are expected here: not worth a warning in the test output.
    const proxiedOrm = await openDatabase({
      url: proxy.url,
      poolSize: inject('databasePoolSize'),
      onWarning: () => undefined,
    });
    try {
      const worker = await createWorker({ orm: proxiedOrm });
      await worker.runUntil(async () => {
        const handle = await start(input);
        // The first payment reads the tenant's credentials while the database answers; then it goes away.
        await env.sleep(3 * DAY_MS);
        await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the first payment');
        await eventually(
          () => orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' }),
          (n) => n === 1,
          { what: 'its projection' },
        );
        proxy.cut();
        await env.sleep(10 * DAY_MS);
        await waitFor(handle, (v) => v.instructions[1].status === 'SETTLED', 'the second payment, during the outage');
        expect(await sandbox.ledger({ tenantId, orderRef: 'db-outage' })).toHaveLength(2);
        expect(await orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' })).toBe(1);
        proxy.restore();
        await handle.result();
        // The write the database did not take locally went to the task queue, which retried it until it was back.
        const history = await handle.fetchHistory();
        recordHistory('projected-after-local-failure', history);
        const events = history.events!;
        const failedLocally = events.findIndex(
          (e) =>
            e.markerRecordedEventAttributes?.markerName === 'core_local_activity' &&
            e.markerRecordedEventAttributes.failure,
        );
        const queued = events.findIndex(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'projectOrder',
        );
        expect(failedLocally).toBeGreaterThan(0);
        expect(queued).toBeGreaterThan(failedLocally);
      });
      const rows = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
      expect(rows.map((r) => r.status)).toEqual(['SETTLED', 'SETTLED']);
    } finally {
      await proxiedOrm.close().catch(() => undefined);
      await proxy.close();
    }
  });

  it('completes a 500-instruction order with every run under 10,000 events and no payload over 2 MB', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const first = (await env.currentTimeMs()) + DAY_MS;
    // 500 instructions falling due in 50 weeks, ten a week. Each a minute after the one before:
    // timers firing at one instant make the Java time-skipping server lose a workflow task now
    // and then (its history ends at WorkflowTaskStarted; the task neither completes nor times out).
    const count = Number(process.env.BIG_ORDER_SIZE ?? 500);
    const specs = Array.from({ length: count }, (_, n) => {
      const open = first + Math.floor(n / 10) * 7 * DAY_MS + (n % 10) * 60_000;
      return {
        instructionRef: `i-${n}`,
        openDate: new Date(open).toISOString(),
        dueDate: new Date(open + DAY_MS).toISOString(),
        amount: '1.00',
      };
    });
    const input = await storeOrder(tenantId, 'big-500', specs);
    const worker = await createWorker();
    const { view, runs } = await worker.runUntil(async () => {
      const handle = await start(input);
      const finished = await handle.result();
      return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
    });
    expect(view.status).toBe('COMPLETED');
    expect(view.instructions.filter((i) => i.status === 'SETTLED')).toHaveLength(count);
    expect(runs.length).toBeGreaterThan(1);
    for (const run of runs) {
      expect(run.events!.length).toBeLessThan(10_000);
      for (const event of run.events!) {
        expect(proto.temporal.api.history.v1.HistoryEvent.encode(event).finish().length).toBeLessThan(2 * 1024 * 1024);
      }
    }
    expect(await sandbox.ledger({ tenantId, orderRef: 'big-500' })).toHaveLength(count);
    expect(await orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' })).toBe(count);
  }, 300_000);

  it('stays open through the card’s reversal window: a return eight weeks after settling is collected again, and the run ends when the window closes', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'return-8w', [{ instructionRef: 'premium-1' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
      const { providerRef, settledAt } = settled.instructions[0];
      await env.sleep(8 * 7 * DAY_MS);
      // As the API hands on a verified callback of the card's app.
      await handle.signal(providerResultSignal, {
        status: 'RETURNED',
        providerRef: providerRef!,
        kind: 'RETURN',
        code: 'insufficient_funds',
        appId: 'SANDBOX_CARD',
      });
      const late = await waitFor(handle, (v) => v.status === 'ACTIVE', 'the order active again');
      expect(late.instructions[0]).toMatchObject({ status: 'LATE', failureCode: 'returned:insufficient_funds' });
      const view = await handle.result();
      expect(view.status).toBe('COMPLETED');
      const payments = (await sandbox.ledger({ tenantId, orderRef: 'return-8w' })).filter((p) => p.kind === 'PAYMENT');
      expect(payments.map((p) => p.idempotencyKey.split(':').at(-1))).toEqual(['1', '2']);
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
      expect(stored).toMatchObject({ status: 'SETTLED', settledAmountMinor: 6000n, returnedAmountMinor: 3000n });
      expect(stored.returnedAt!.getTime() - Date.parse(settledAt!)).toBeGreaterThanOrEqual(8 * 7 * DAY_MS);
      // The run ended when the card's 120 days after the second settlement had passed, not before.
      expect((await env.currentTimeMs()) - stored.settledAt!.getTime()).toBeGreaterThanOrEqual(120 * DAY_MS);
      const history = await handle.fetchHistory();
      const timers = (history.events ?? []).map((e) =>
        Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0),
      );
      expect(Math.max(...timers)).toBeGreaterThanOrEqual(119 * 24 * 3600);
      await record('return-recollected', handle.workflowId);
    });
  });

  it('expires arrears with nothing planned after 30 days: FAILED expired, the order COMPLETED_WITH_FAILURES, retryable meanwhile', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'arrears-30d', [
      { instructionRef: 'no-card', financialInstrumentId: undefined },
    ]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const late = await waitFor(handle, (v) => v.instructions[0].status === 'LATE', 'no instrument at its due date');
      expect(late.instructions[0].nextActionAt).toBeDefined();
      await env.sleep(31 * DAY_MS);
      const failed = await waitFor(handle, (v) => v.status === 'COMPLETED_WITH_FAILURES', 'the arrears expired');
      expect(failed.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'expired' });
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'no-card' });
      const waited = stored.failedAt!.getTime() - stored.lateAt!.getTime();
      expect(waited).toBeGreaterThanOrEqual(30 * DAY_MS);
      expect(waited).toBeLessThan(30 * DAY_MS + 60_000);
      // Retried with an instrument while the order is open: collected, and the order completes.
      await handle.executeUpdate(retryInstructionUpdate, {
        args: [{ instructionRef: 'no-card', financialInstrumentId: 'card_ok' }],
      });
      const view = await handle.result();
      expect(view.status).toBe('COMPLETED');
      expect(view.instructions[0].status).toBe('SETTLED');
      await record('arrears-expired', handle.workflowId);
    });
  });

  it('refunds a settled payment in parts through its app, each under a key of its own, and refuses more than is left', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'refunds-wf', [{ instructionRef: 'premium-1', amount: '30.00' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
      const refund = (refundId: string, amountMinor: string) =>
        handle.executeUpdate(createRefundUpdate, { args: [{ instructionRef: 'premium-1', refundId, amountMinor }] });
      await refund(randomUUID(), '1000');
      await refund(randomUUID(), '1500');
      await expectRefused(refund(randomUUID(), '501'), /at most 500 minor units/);
      const view = await waitFor(
        handle,
        (v) => (v.refunds ?? []).filter((r) => r.status === 'SUCCEEDED').length === 2,
        'both refunds made',
      );
      expect(view.status).toBe('COMPLETED');
      const ledger = await sandbox.ledger({ tenantId, orderRef: 'refunds-wf' });
      expect(
        ledger
          .filter((i) => i.kind === 'REFUND')
          .map((i) => [i.idempotencyKey.split(':').slice(-2).join(':'), i.amountMinor]),
      ).toEqual([
        ['refund:1', '1000'],
        ['refund:2', '1500'],
      ]);
      await handle.result();
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
      expect(stored).toMatchObject({ settledAmountMinor: 3000n, refundedAmountMinor: 2500n });
      await record('refunds', handle.workflowId);
    });
  });

  it('keeps a refund with the app that took its payment: asked about and called back through it after the customer paid again by another app', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, ['SANDBOX_CARD'], provider);
      const input = await storeOrder(
        tenantId,
        'refund-own-app',
        [{ instructionRef: 'premium-1' }],
        // Its scheme offers the tenant's own provider first, and the sandbox's cards.
        twoOptions(resolvedTo('HTTP_CONNECTOR', 'CARD'), resolvedTo('SANDBOX_CARD', 'CARD')),
      );
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        await env.sleep(2 * DAY_MS);
        const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'collected by its own provider');
        const paymentRef = settled.instructions[0].providerRef!;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId: randomUUID(), amountMinor: '1000' }],
        });
        const pending = await waitFor(handle, (v) => v.refunds?.[0]?.providerRef !== undefined, 'the refund PENDING');
        const refundRef = pending.refunds![0].providerRef!;
        expect(pending.refunds![0]).toMatchObject({ status: 'PENDING', appId: 'HTTP_CONNECTOR' });
        // While its refund is under way the payment is taken back, and the customer pays by card instead.
        await handle.signal(providerResultSignal, {
          status: 'RETURNED',
          providerRef: paymentRef,
          kind: 'RETURN',
          code: 'insufficient_funds',
          appId: 'HTTP_CONNECTOR',
        });
        await waitFor(
          handle,
          (v) => v.status === 'ACTIVE' && v.instructions[0].status === 'LATE',
          'the payment returned',
        );
        await handle.executeUpdate(payInstructionUpdate, {
          args: [
            {
              instructionRef: 'premium-1',
              appId: 'SANDBOX_CARD',
              paymentMethod: 'CARD',
              financialInstrumentId: 'card_ok',
            },
          ],
        });
        await waitFor(
          handle,
          (v) => v.instructions[0].status === 'SETTLED' && v.instructions[0].appId === 'SANDBOX_CARD',
          'paid again by card',
        );
        const asked = () => provider.requests.filter((r) => r.method === 'GET' && r.path === `/refunds/${refundRef}`);
        const askedBefore = asked().length;
        // The refund is still asked about at its own provider, and taken when that provider calls back.
        await env.sleep(2 * DAY_MS);
        await eventually(
          () => asked().length,
          (n) => n > askedBefore,
          { what: 'the refund asked about at its own provider', timeoutMs: 30_000 },
        );
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        await waitFor(handle, (v) => v.refunds?.[0]?.status === 'SUCCEEDED', 'the refund’s callback taken');
        const view = await handle.result();
        expect(view.status).toBe('COMPLETED');
        const stored = await orm.em.fork().findOneOrFail(PaymentRefund, { tenantId, providerRef: refundRef });
        expect(stored).toMatchObject({ status: 'SUCCEEDED', appId: 'HTTP_CONNECTOR', paymentRef });
        expect(provider.refunds).toHaveLength(1);
        await record('refund-keeps-its-app', handle.workflowId);
      });
    } finally {
      await provider.close();
    }
  });

  it('keeps a refund asked for before refunds kept their app with the app it went through, when the instruction is paid through another', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, ['SANDBOX_CARD'], provider);
      const input = await storeOrder(
        tenantId,
        'refund-unkept-app',
        [{ instructionRef: 'premium-1' }],
        twoOptions(resolvedTo('HTTP_CONNECTOR', 'CARD'), resolvedTo('SANDBOX_CARD', 'CARD')),
      );
      const now = await env.currentTimeMs();
      const at = (ms: number) => new Date(now + ms).toISOString();
      // What a run of the code before hands on: its payment taken back while a refund of it, with no
      // app of its own, waits for its provider; the instruction LATE, to be collected again.
      const state = OrderEntity.initialState(input);
      const [machine] = state.instructions;
      Object.assign(machine, {
        status: 'LATE',
        toldStatus: 'LATE',
        attempts: 1,
        keyAttempt: 2,
        providerRef: 'own_paid',
        settledAmountMinor: '3000',
        returnedAmountMinor: '3000',
        returnCode: 'insufficient_funds',
        failureCode: 'returned:insufficient_funds',
        retryAt: at(30 * DAY_MS),
        refunds: [
          {
            refundId: randomUUID(),
            instructionRef: 'premium-1',
            number: 1,
            amountMinor: '1000',
            currency: 'EUR',
            paymentRef: 'own_paid',
            status: 'PENDING',
            providerRef: 'ownr_before',
            createdAt: at(-DAY_MS),
            attempts: 1,
            unanswered: false,
            revision: 0,
            toldStatus: 'PENDING',
            pending: { providerRef: 'ownr_before', polls: 0, nextPollAt: at(DAY_MS) },
          },
        ],
      });
      Object.assign(state, { orderEvents: ['order.created'], dirty: [], orderDirty: false });
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start({ ...input, instructions: [] }, { continued: state });
        await handle.executeUpdate(payInstructionUpdate, {
          args: [
            {
              instructionRef: 'premium-1',
              appId: 'SANDBOX_CARD',
              paymentMethod: 'CARD',
              financialInstrumentId: 'card_ok',
            },
          ],
        });
        const paid = await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'paid by card');
        expect(paid.refunds![0]).toMatchObject({ status: 'PENDING', appId: 'HTTP_CONNECTOR' });
        await env.sleep(2 * DAY_MS);
        await eventually(
          () => provider.requests.filter((r) => r.method === 'GET' && r.path === '/refunds/ownr_before').length,
          (n) => n > 0,
          { what: 'the refund asked about at the provider it went through', timeoutMs: 30_000 },
        );
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: 'ownr_before',
          appId: 'HTTP_CONNECTOR',
        });
        const view = await handle.result();
        expect(view.refunds![0]).toMatchObject({ status: 'SUCCEEDED', appId: 'HTTP_CONNECTOR' });
      });
    } finally {
      await provider.close();
    }
  });

  it.each(['answered at once', 'answered PENDING, then asked'] as const)(
    'believes no refund of other money than asked (%s): outcome unknown, the key kept, until the provider says it right',
    async (how) => {
      const pending = how === 'answered PENDING, then asked';
      const provider = await startHostileProvider({});
      try {
        const orderRef = pending ? 'refund-other-money-pending' : 'refund-other-money';
        const tenantId = await collectedByOwnProvider(provider, orderRef, 'r', async (handle) => {
          const refundId = randomUUID();
          const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
          // 100.00 EUR refunded of the 10.00 EUR asked.
          const otherMoney = { amountMinor: '10000', currency: 'EUR' };
          if (pending) provider.behaviour.refundOutcome = 'PENDING';
          else provider.behaviour.answerOverrides = otherMoney;
          await handle.executeUpdate(createRefundUpdate, {
            args: [{ instructionRef: 'r', refundId, amountMinor: '1000' }],
          });
          if (pending) {
            await eventually(stored, (r) => r?.providerRef != null, { what: 'the refund PENDING', timeoutMs: 60_000 });
            provider.behaviour.refundOutcome = 'SUCCEEDED';
            provider.behaviour.answerOverrides = otherMoney;
            // Time skips only while the test sleeps: past the first status poll.
            await env.sleep(10 * 60_000);
          }
          const unknown = await eventually(stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
            what: 'the refund’s outcome unknown after a refund of other money',
            timeoutMs: 60_000,
          });
          expect(unknown?.status).toBe('PENDING');
          provider.behaviour.answerOverrides = undefined;
          // Called again under its key an hour later, answered with the money asked.
          await env.sleep(70 * 60_000);
          await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 60_000 });
        });
        const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
        expect(calls.length).toBeGreaterThan(1);
        expect(new Set(calls.map((r) => r.idempotencyKey))).toEqual(new Set([provider.refunds[0].idempotencyKey]));
        expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
        const instruction = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'r' });
        expect(instruction.refundedAmountMinor).toBe(1000n);
      } finally {
        await provider.close();
      }
    },
  );

  it('calls a refund of unknown outcome (PENDING, then asked: other money) again at once when its callback comes', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-unknown-called-back', 'r', async (handle) => {
        const { stored, refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
        // To the first status poll, answered with other money.
        await env.sleep(5 * 60_000 + 1_000);
        await eventually(stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
          what: 'the refund’s outcome unknown',
          timeoutMs: 30_000,
        });
        provider.behaviour.answerOverrides = undefined;
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        // Time skips only while the test sleeps, so not by the hourly retry: called again at once.
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
        await record('refund-unknown-called-back', handle.workflowId);
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
      const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
      expect(calls.map((r) => r.idempotencyKey)).toEqual([1, 2].map(() => provider.refunds[0].idempotencyKey));
    } finally {
      await provider.close();
    }
  });

  it('makes a refund by a callback that came while the provider was asked, though its answer then stated other money', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-callback-while-asked', 'r', async (handle) => {
        const { refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, { status: 'SUCCEEDED', providerRef: refundRef, appId: 'HTTP_CONNECTOR' }),
        );
        const ended = await waitFor(handle, (v) => v.refunds?.[0]?.status !== 'PENDING', 'the refund ended');
        expect(ended.refunds?.[0]?.status).toBe('SUCCEEDED');
        provider.behaviour.answerOverrides = undefined;
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
    } finally {
      await provider.close();
    }
  });

  it('keeps the key of a refund failed by a callback that came while the provider was asked, its answer then stating other money', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-failed-while-asked', 'r', async (handle) => {
        const { stored, refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, {
            status: 'FAILED',
            providerRef: refundRef,
            code: 'refund_failed',
            appId: 'HTTP_CONNECTOR',
          }),
        );
        // Money moved, by the answer: not failed (its amount refundable again under a new key), but unknown.
        await eventually(stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
          what: 'the refund’s outcome unknown',
          timeoutMs: 30_000,
        });
        expect((await stored())?.status).toBe('PENDING');
        provider.behaviour.answerOverrides = undefined;
        // Called again under its key an hour later, and made by the provider's answer to that.
        await env.sleep(61 * 60_000);
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
      const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
      expect(new Set(calls.map((r) => r.idempotencyKey))).toEqual(new Set([provider.refunds[0].idempotencyKey]));
    } finally {
      await provider.close();
    }
  });

  it('makes a refund by a callback that came while the provider was asked, though its answer then said failed', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-made-while-asked', 'r', async (handle) => {
        const { refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'FAILED';
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, { status: 'SUCCEEDED', providerRef: refundRef, appId: 'HTTP_CONNECTOR' }),
        );
        const ended = await waitFor(handle, (v) => v.refunds?.[0]?.status !== 'PENDING', 'the refund ended');
        expect(ended.refunds?.[0]?.status).toBe('SUCCEEDED');
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
    } finally {
      await provider.close();
    }
  });

  it('lets a tenant admin resolve a PENDING refund once its provider refuses to say how it ended, and not before', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-refused-then-resolved', 'r', async (handle) => {
        const { stored } = await refundPendingAtProvider(handle, 'r');
        const refundId = (await stored())!.refundId;
        const resolve = () =>
          handle.executeUpdate(resolveRefundUpdate, { args: [{ instructionRef: 'r', refundId, outcome: 'FAILED' }] });
        await expectRefused(resolve(), /is PENDING at its provider, which will say how it ends/);
        await statusPollRefused(provider, handle);
        const shown = await eventually(stored, (r) => r?.failureCode != null, {
          what: 'the refusal shown',
          timeoutMs: 30_000,
        });
        expect(shown).toMatchObject({ status: 'PENDING', failureCode: 'status_refused:provider_rejected:http_404' });
        await takenOnce(resolve, /PENDING at its provider|right now/);
        await eventually(stored, (r) => r?.status === 'FAILED', { what: 'the refund resolved', timeoutMs: 30_000 });
        expect((await stored())?.failureCode).toBe('resolved_not_refunded');
      });
      expect(provider.refunds).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('resolves a refund of unknown outcome only between its calls: FAILED frees its amount for a refund under a new key', async () => {
    const provider = await startHostileProvider({});
    try {
      await collectedByOwnProvider(provider, 'refund-resolved', 'premium-1', async (handle, tenantId) => {
        const refundId = randomUUID();
        const refundCalls = () => provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds').length;
        // The provider takes the refund's calls and answers none: its outcome is unknown.
        provider.behaviour.holdRefunds = true;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId, amountMinor: '1000' }],
        });
        // Time skips only while the test sleeps: the refund's calls and its hourly retry come when it does.
        const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
        await env.sleep(10 * 60_000);
        await eventually(stored, (r) => r?.failureCode === 'provider_unavailable', {
          what: 'the refund unanswered',
          timeoutMs: 60_000,
        });
        const firstCall = refundCalls();
        const resolve = (outcome: 'SUCCEEDED' | 'FAILED') =>
          handle.executeUpdate(resolveRefundUpdate, { args: [{ instructionRef: 'premium-1', refundId, outcome }] });
        const anHourLater = env.sleep(60 * 60_000);
        await eventually(refundCalls, (n) => n > firstCall, { what: 'the refund called again', timeoutMs: 60_000 });
        // While that call is out, only its answer may end the refund.
        await expectRefused(resolve('FAILED'), /being asked about refund 1 of premium-1 right now/);
        await anHourLater;
        await env.sleep(10 * 60_000);
        // Between calls a tenant admin says nothing was refunded: its amount may be refunded again.
        await resolve('FAILED');
        await expectRefused(resolve('SUCCEEDED'), /is FAILED; only a refund of unknown outcome is resolved/);
        provider.behaviour.holdRefunds = false;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId: randomUUID(), amountMinor: '3000' }],
        });
        await handle.result();
        expect(await stored()).toMatchObject({ status: 'FAILED', failureCode: 'resolved_not_refunded' });
        expect(provider.refunds.map((r) => [r.idempotencyKey.split(':').slice(-2).join(':'), r.amountMinor])).toEqual([
          ['refund:2', '3000'],
        ]);
        const instruction = await orm.em
          .fork()
          .findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
        expect(instruction.refundedAmountMinor).toBe(3000n);
      });
    } finally {
      await provider.close();
    }
  });
});
