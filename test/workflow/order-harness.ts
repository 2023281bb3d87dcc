// The payment-order workflow's tests on the time-skipping server share this: one Java test server,
// the lane's database and a sandbox per file, fresh workers per test, and the helpers that drive orders.
// Importing it registers the file's hooks (start, roll the server's clock over, stop).
import { randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import got from 'got';
import { afterAll, beforeAll, beforeEach, expect, inject } from 'vitest';
import { createActivities } from '../../worker/create-activities.js';
import { buildOrder } from '../../orders/order-plans.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import { PaymentRefund, type Tenant } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { orderWorkflowId, tenantHostedQueue } from '../../orders/contract/ids.js';
import type { PaymentOrderInput } from '../../orders/contract/messages.js';
import { REFUSAL_OF_CHANGE } from '../../orders/contract/refusals.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../../orders/contract/search-attributes.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { workflowInputOf } from '../../orders/start-order.js';
import {
  orderStateQuery,
  createRefundUpdate,
  providerResultSignal,
  type OrderView,
} from '../../orders/contract/messages.js';
import { paymentOrderWorkflow, type PaymentOrderWorkflowInput } from '../../orders/workflow/payment-order.workflow.js';
import { eventually } from '../support/eventually.js';
import { recordHistory } from '../support/histories.js';
import { startHostileProvider, type Behaviour, type HostileProvider } from '../support/hostile-provider.js';
import { startSandbox, type RunningSandbox } from '../support/sandbox.js';
import { startTimeSkippingEnvironment } from '../support/time-skipping.js';
import { quietTemporalLogs } from '../support/system.js';
import { createTenantRows, resolvedTo } from '../support/tenant-rows.js';
import { lane } from '../support/lanes.js';
import { testWorkflowBundle } from '../support/workflow-bundle.js';

export const TASK_QUEUE = 'payments-time-skipping';
export const DAY_MS = 24 * 60 * 60 * 1000;

export let env: TestWorkflowEnvironment;
export let orm: MikroORM;
export let sandbox: RunningSandbox;
export const masterKeys = { current: randomBytes(32).toString('base64') };

export async function startTimeSkippingServer() {
  env = await startTimeSkippingEnvironment();
  // The Java server validates search attributes like a real one, so they are registered as in production.
  await registerSearchAttributes(env.connection, env.namespace ?? 'default', ORDER_SEARCH_ATTRIBUTES);
}

beforeAll(async () => {
  quietTemporalLogs();
  await startTimeSkippingServer();
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: inject('databasePoolSize') });
  sandbox = await startSandbox();
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

export type InstructionSpec = Partial<CreateOrderInput['instructions'][number]> & {
  instructionRef: string;
  /** How this one is paid, when not as the order's others. */
  resolution?: ReturnType<typeof resolvedTo>;
};

/** Stores the order as the API would, and returns the workflow input built from the stored row. */
export async function storeOrder(
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
export async function createWorker(
  options: {
    sandboxUrl?: string;
    orm?: MikroORM;
    /** The activities as a worker runs them, from the real ones (a worker's refusal made to order). */
    activities?: (real: ReturnType<typeof createActivities>) => ReturnType<typeof createActivities>;
  } = {},
) {
  const real = createActivities({
    orm: options.orm ?? orm,
    masterKeys,
    apps: createAppRegistry(got, {
      sandboxUrl: options.sandboxUrl ?? sandbox.url,
      callbackBaseUrl: 'http://127.0.0.1:9',
      outboundUrls: { allowLoopbackHttp: true },
    }),
  });
  const activities = options.activities?.(real) ?? real;
  const orders = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowBundle: testWorkflowBundle(),
    activities,
  });
  const tenantHosted = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: tenantHostedQueue(TASK_QUEUE),
    activities,
  });
  return { runUntil: <T>(fn: () => Promise<T>) => tenantHosted.runUntil(() => orders.runUntil(fn)) };
}

export function start(input: PaymentOrderInput, extra: Partial<PaymentOrderWorkflowInput> = {}) {
  return env.client.workflow.start(paymentOrderWorkflow, {
    workflowId: orderWorkflowId(input.tenantId, input.orderRef),
    taskQueue: TASK_QUEUE,
    args: [{ ...input, ...extra }],
  });
}

/**
 * Runs `body` on a started run, ending the run (terminated) if `body` fails before it ended: a run
 * left open holds the time-skipping server's clock, and every test after it would time out.
 */
export async function endedOnFailure<T>(handle: WorkflowHandle, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    await handle.terminate('the test failed').catch(() => undefined);
    throw err;
  }
}

/** Runs the order's workflow to its end, skipping time. */
export async function runOrder(input: PaymentOrderInput, extra: Partial<PaymentOrderWorkflowInput> = {}) {
  const worker = await createWorker();
  return worker.runUntil(async () => (await start(input, extra)).result());
}

export function waitFor(handle: WorkflowHandle, done: (view: OrderView) => boolean, what: string) {
  return eventually(() => handle.query(orderStateQuery), done, { what, timeoutMs: 60_000 });
}

/** Every run of a workflow, oldest first, following continue-as-new. */
export async function runsOf(workflowId: string, firstRunId: string) {
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
export async function patchesOf(workflowId: string): Promise<string[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0];
    return data ? [defaultPayloadConverter.fromPayload<{ id: string }>(data).id] : [];
  });
}

/** The activities the order's (first) run scheduled, in order: retries of one are not scheduled again. */
export async function scheduledActivities(input: PaymentOrderInput) {
  const history = await env.client.workflow.getHandle(orderWorkflowId(input.tenantId, input.orderRef)).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((name): name is string => name !== undefined && name !== 'projectOrder');
}

/**
 * A one-instruction order the tenant's own provider collected, its run still open for refunds: `then`
 * gets its handle and tenant while the worker runs, and the run is then awaited. Answers the tenant.
 */
export async function collectedByOwnProvider(
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
export async function orderAtOwnProvider(
  provider: HostileProvider,
  orderRef: string,
  instruction: Parameters<typeof storeOrder>[2][number] = { instructionRef: 'p' },
) {
  const { tenantId } = await createTenantRows(orm, masterKeys, [], provider);
  const input = await storeOrder(tenantId, orderRef, [instruction], resolvedTo('HTTP_CONNECTOR', 'CARD'));
  return { tenantId, input };
}

/** What a scenario at the tenant's own provider is given: the provider, the order stored, and a worker for it. */
export interface AtOwnProvider {
  provider: HostileProvider;
  tenantId: string;
  input: PaymentOrderInput;
  worker: Awaited<ReturnType<typeof createWorker>>;
}

/**
 * A scenario of one order paid through the tenant's own provider, behaving as `behaviour` says: the
 * provider started, the order stored (`orderAtOwnProvider`, with `instruction` if given), a worker made
 * (with `worker`'s options), and the provider closed whatever the scenario does.
 */
export async function atOwnProvider<T>(
  behaviour: Behaviour,
  orderRef: string,
  scenario: (at: AtOwnProvider) => Promise<T>,
  options: { instruction?: Parameters<typeof orderAtOwnProvider>[2]; worker?: Parameters<typeof createWorker>[0] } = {},
): Promise<T> {
  const provider = await startHostileProvider(behaviour);
  try {
    const { tenantId, input } = await orderAtOwnProvider(provider, orderRef, options.instruction);
    const worker = await createWorker(options.worker);
    return await scenario({ provider, tenantId, input, worker });
  } finally {
    await provider.close();
  }
}

/**
 * Its payment answered PENDING: PROCESSING alone is also the call under way, its answer (and the
 * provider's record of the charge) not yet in.
 */
export const answeredPending = (v: OrderView) =>
  v.instructions[0].status === 'PROCESSING' && Boolean(v.instructions[0].providerRef);

/** To the order's due date (time skips only while the test sleeps): its payment answered PENDING; its reference. */
export async function paymentPendingAtProvider(handle: WorkflowHandle): Promise<string> {
  await env.sleep(2 * DAY_MS);
  const pending = await waitFor(handle, answeredPending, 'the payment PENDING');
  return pending.instructions[0].providerRef!;
}

/**
 * To the order's due date, its provider settling 0.01 EUR of the 30.00 EUR asked (its answers stating
 * other money): the payment's outcome unknown, LATE, its key kept. Its view then; the provider's
 * answers are true again from here.
 */
export async function paymentUnknownAtProvider(provider: HostileProvider, handle: WorkflowHandle) {
  provider.behaviour.answerOverrides = { amountMinor: '1', currency: 'EUR' };
  await env.sleep(2 * DAY_MS);
  const unknown = await waitFor(
    handle,
    (v) => v.instructions[0].failureCode === 'outcome_unknown' && v.instructions[0].status === 'LATE',
    'the outcome unknown after a settlement of other money',
  );
  provider.behaviour.answerOverrides = undefined;
  return unknown;
}

/** The callback of the tenant's own provider saying its payment `providerRef` was taken back. */
export function returnCalledBack(
  handle: WorkflowHandle,
  providerRef: string,
  reversal: { kind: 'RETURN' | 'CHARGEBACK'; code: string },
) {
  return handle.signal(providerResultSignal, { status: 'RETURNED', ...reversal, providerRef, appId: 'HTTP_CONNECTOR' });
}

/** A refund of 10.00 EUR of `instructionRef` asked for, and answered PENDING by the provider: its read-model row, and its provider's reference. */
export async function refundPendingAtProvider(handle: WorkflowHandle, instructionRef: string) {
  const refundId = randomUUID();
  const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
  await handle.executeUpdate(createRefundUpdate, { args: [{ instructionRef, refundId, amountMinor: '1000' }] });
  const pending = await eventually(stored, (r) => r?.providerRef != null, { what: 'the refund PENDING' });
  return { stored, refundRef: pending!.providerRef! };
}

/**
 * A refund asked for, answered PENDING, then at its first status poll answered with other money than
 * asked: its outcome unknown, its reference kept, the provider answering PENDING and the money asked again.
 */
export async function refundUnknownAtProvider(
  provider: HostileProvider,
  handle: WorkflowHandle,
  instructionRef: string,
) {
  const pending = await refundPendingAtProvider(handle, instructionRef);
  provider.behaviour.refundOutcome = 'SUCCEEDED';
  provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
  // Time skips only while the test sleeps: to the first status poll, 5 min after the PENDING answer.
  await env.sleep(5 * 60_000 + 1_000);
  await eventually(pending.stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
    what: 'the refund’s outcome unknown',
    timeoutMs: 30_000,
  });
  provider.behaviour.answerOverrides = undefined;
  provider.behaviour.refundOutcome = 'PENDING';
  return pending;
}

/**
 * To the first status poll (of `path`, the payment or refund), its answer held while `callBack`
 * signals the provider's callback, then given as the provider then stands.
 */
export async function calledBackWhileAsked(provider: HostileProvider, path: string, callBack: () => Promise<void>) {
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

type Callback =
  | { status: 'SETTLED' }
  | { status: 'DECLINED'; code: string; retryable: boolean }
  | { status: 'RETURNED'; kind: 'RETURN' | 'CHARGEBACK'; code: string };

/**
 * An order whose payment its own provider answered PENDING, then asked about at its first status
 * poll: the provider answers `answer` (settled, with the money asked or other money, or declined)
 * while its callback `callback` comes. Until `then` holds of the instruction (by default: SETTLED),
 * then to the order's end.
 */
export async function paymentCalledBackWhileAsked(
  provider: HostileProvider,
  orderRef: string,
  scenario: {
    answer: 'SETTLED' | 'other money' | 'DECLINED';
    /** One callback, or several in order. */
    callback: Callback | Callback[];
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
    await calledBackWhileAsked(provider, `/payments/${providerRef}`, async () => {
      for (const one of Array.isArray(callback) ? callback : [callback])
        await handle.signal(providerResultSignal, { ...one, providerRef, appId: 'HTTP_CONNECTOR' });
    });
    await waitFor(handle, (v) => then.is(v.instructions[0]), then.what);
    provider.behaviour.answerOverrides = undefined;
    return handle.result();
  });
  return { result, workflowId };
}

/** To the first status poll, which the provider refuses for good (404): until the workflow has its failure. */
export async function statusPollRefused(provider: HostileProvider, handle: WorkflowHandle) {
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
export async function takenOnce(update: () => Promise<unknown>, reason: RegExp) {
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
export async function expectRefused(update: Promise<unknown>, reason: RegExp, code?: string) {
  const error = await update.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause as ApplicationFailure;
  expect(cause.message).toMatch(reason);
  // As the API tells it (orders/contract/refusals.ts).
  if (code !== undefined) expect(REFUSAL_OF_CHANGE[cause.type ?? '']?.code).toBe(code);
}

/** A resolution offering `first`'s option (chosen), then `second`'s. */
export function twoOptions(first: ReturnType<typeof resolvedTo>, second: ReturnType<typeof resolvedTo>) {
  return { ...first, options: [first.chosen, { ...second.chosen, priority: 2 }] };
}

export async function record(name: string, workflowId: string) {
  if (!process.env.RECORD_HISTORIES) return;
  recordHistory(name, await env.client.workflow.getHandle(workflowId).fetchHistory());
}
