import { defaultPayloadConverter } from '@temporalio/common';
import { tsToDate } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { OrderEvent } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { LOCAL_WRITE_MAX_INSTRUCTIONS } from '../../orders/workflow/projector.js';
import { historyAtRest, localActivityMarker } from '../../bench/support/history-counts.js';
import { eventually } from '../support/eventually.js';
import { recordHistory } from '../support/histories.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { holdRow } from '../support/row-hold.js';

// A payment call under way reaches the read model with its answer, in one projection, so that the
// read model's writes do not queue ahead of the payments in a burst; an update never waits for it.

const EventType = proto.temporal.api.enums.v1.EventType;
let system: TestSystem;

beforeAll(async () => {
  // Calls here take up to 16 s: the worker waits longer than that for the sandbox before it gives up.
  system = await startSystem({ sandboxTimeoutMs: 30_000 });
});
afterAll(async () => {
  await system?.close();
});

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

function cardPayment(ref: string, due: string) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '20.00',
    currency: 'EUR',
    country: 'FR',
    openDate: due,
    dueDate: due,
    financialInstrumentId: 'card_ok',
  };
}

async function placeOrder(tenant: TenantFixture, orderRef: string, instructions: unknown[]) {
  const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

/**
 * The order's workflow history, once the read model shows the order COMPLETED and nothing is under
 * way in the history: a local write commits inside its workflow task, before the task's commands (its
 * marker among them) reach the history.
 */
async function historyOnceCompleted(tenant: TenantFixture, orderRef: string, timeoutMs: number) {
  await eventually(
    async () => (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body,
    (order: any) => order.status === 'COMPLETED',
    { what: `${orderRef} settled in the read model`, timeoutMs },
  );
  const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, orderRef));
  return eventually(() => handle.fetchHistory(), historyAtRest, { what: `${orderRef}'s history at rest` });
}

const scheduled = (e: proto.temporal.api.history.v1.IHistoryEvent, name: string) =>
  e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
  e.activityTaskScheduledEventAttributes?.activityType?.name === name;

/** A projection written: the local activity's marker, or the activity on the task queue a failed local write goes to. */
function isProjection(e: proto.temporal.api.history.v1.IHistoryEvent): boolean {
  const local = localActivityMarker(e);
  return scheduled(e, 'projectOrder') || (local?.activityType === 'projectOrder' && !local.failed);
}

/** Each projection written, in order: how many instructions it carried (its summary says) and whether it was local. */
function projectionsWritten(history: proto.temporal.api.history.v1.IHistory) {
  return (history.events ?? []).filter(isProjection).map((e) => {
    const summary = defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!);
    return {
      instructions: Number(/^project (\d+) instruction/.exec(summary)![1]),
      local: !scheduled(e, 'projectOrder'),
    };
  });
}

/** The order's payment call in its history, and the projections written while it was out and after its answer. */
function projectionsAroundCall(history: proto.temporal.api.history.v1.IHistory) {
  const events = history.events ?? [];
  const call = events.findIndex((e) => scheduled(e, 'executePayment'));
  const answered = events.findIndex(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
      String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(events[call]?.eventId),
  );
  const projections = events.flatMap((e, at) => (isProjection(e) ? [at] : []));
  return {
    call,
    during: projections.filter((at) => at > call && at < answered),
    after: projections.filter((at) => at > answered),
  };
}

/**
 * What operators were shown around the payment call (memo upserts, with the instructions counted by
 * status), and the patch markers: each with its workflow task, counted from the history's start.
 */
function operatorViewAroundCall(history: proto.temporal.api.history.v1.IHistory) {
  const events = history.events ?? [];
  const taskOf = (at: number) =>
    events.slice(0, at + 1).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length;
  const call = events.findIndex((e) => scheduled(e, 'executePayment'));
  const projectionTasks = events.flatMap((e, at) => (isProjection(e) ? [taskOf(at)] : []));
  const memos = events.flatMap((e, at) => {
    const field = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.instructionCounts;
    return field ? [{ task: taskOf(at), counts: defaultPayloadConverter.fromPayload(field) }] : [];
  });
  const upserts = events.flatMap((e, at) => {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    return fields ? [{ task: taskOf(at), keys: Object.keys(fields).sort() }] : [];
  });
  const patches = events.flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0];
    return data ? [defaultPayloadConverter.fromPayload<{ id: string }>(data).id] : [];
  });
  return { callTask: taskOf(call), projectionTasks, memos, upserts, patches };
}

it('projects a payment answered at once with its answer: one projection after the call, every event told in order', async () => {
  await system.sandbox.setLatency(0);
  const tenant = await system.newTenant();
  // Due in 3 s: the order's first task has run (and projected) by then, on a busy machine too.
  await placeOrder(tenant, 'answered', [cardPayment('a', inSeconds(3))]);
  const history = await historyOnceCompleted(tenant, 'answered', 30_000);
  const { call, during, after } = projectionsAroundCall(history);
  expect(call).toBeGreaterThan(0);
  // Nothing projected while the call was out; once, after its answer (the events told, below, show what).
  expect(during).toEqual([]);
  expect(after).toHaveLength(1);
  // Written locally, in the tasks that asked for them: none went through the task queue.
  expect((history.events ?? []).filter((e) => scheduled(e, 'projectOrder'))).toEqual([]);
  recordHistory('projected-locally', history);
  // Operators are shown the order as the read model is: not in the task that sends the call, but with
  // its answer; and the order's patches are one marker, at its start, not one in each burst task.
  const view = operatorViewAroundCall(history);
  expect(view.memos.map((m) => m.counts)).toEqual([{ PENDING: 1 }, { SETTLED: 1 }]);
  expect(view.memos.map((m) => m.task)).toEqual([1, view.projectionTasks[1]]);
  expect(view.projectionTasks[1]).toBeGreaterThan(view.callTask);
  expect(view.patches).toEqual(['order-projects-big-on-queue']);
  expect(view.upserts).toEqual([
    { task: 1, keys: ['TemporalChangeVersion'] },
    { task: 1, keys: ['NextActionAt', 'OrderStatus'] },
    { task: view.projectionTasks[1], keys: ['NextActionAt', 'OrderStatus'] },
  ]);
  recordHistory('shown-with-answer', history);
  const told = await system.orm.em
    .fork()
    .find(OrderEvent, { tenantId: tenant.tenantId, orderRef: 'answered', instructionRef: 'a' });
  expect(told.sort((x, y) => x.eventKey.localeCompare(y.eventKey)).map((e) => e.type)).toEqual([
    'instruction.opened',
    'instruction.processing',
    'instruction.settled',
  ]);
});

it('answers an update while another payment’s call is under way at once, projected, with that call shown under way', async () => {
  // The provider takes 12 s to answer: longer than an update waits for the read model (5 s), and
  // than the projection waits for a call (10 s), so the update alone can have made it project.
  await system.sandbox.setLatency(12_000);
  try {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'in-flight', [cardPayment('now', inSeconds(1)), cardPayment('later', '2031-06-01')]);
    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'in-flight'));
    await eventually(
      async () => (await handle.fetchHistory()).events ?? [],
      (events) =>
        events.some(
          (e) =>
            e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
            e.activityTaskScheduledEventAttributes?.activityType?.name === 'executePayment',
        ),
      { what: 'the payment call sent', timeoutMs: 30_000 },
    );
    const res = await tenant.client.request('PATCH', '/v1/order-management/in-flight/instructions/later', {
      body: { amount: '25.50' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byRef = (ref: string) => res.body.instructions.find((i: any) => i.instructionRef === ref);
    // The answer is the read model: it shows the amendment, and the payment still under way with it.
    expect(byRef('later')).toMatchObject({ amount: '25.50' });
    expect(byRef('now')).toMatchObject({ status: 'PROCESSING' });
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'in-flight' })).toEqual([]);
    recordHistory('update-during-call', await handle.fetchHistory());
    await eventually(
      () => system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'in-flight' }),
      (charges) => charges.length === 1,
      { what: 'the slow call answered', timeoutMs: 30_000 },
    );
  } finally {
    await system.sandbox.setLatency(0);
  }
});

it('shows a call its provider has not answered within 10 s as under way, then its answer', async () => {
  // 16 s: the read model shows the call under way from 10 s, for a window a busy machine does not miss.
  await system.sandbox.setLatency(16_000);
  try {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'slow', [cardPayment('a', inSeconds(3))]);
    await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/slow')).body,
      (order: any) => order.instructions[0].status === 'PROCESSING',
      { what: 'the call shown under way', timeoutMs: 30_000 },
    );
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'slow' })).toEqual([]);
    const history = await historyOnceCompleted(tenant, 'slow', 45_000);
    const { call, during, after } = projectionsAroundCall(history);
    expect(call).toBeGreaterThan(0);
    expect(during).toHaveLength(1);
    expect(after).toHaveLength(1);
    // Operators, too, are shown the call under way once the read model stops waiting for its answer.
    const view = operatorViewAroundCall(history);
    expect(view.memos.map((m) => m.counts)).toEqual([{ PENDING: 1 }, { PROCESSING: 1 }, { SETTLED: 1 }]);
    expect(view.memos.slice(1).map((m) => m.task)).toEqual(view.projectionTasks.slice(1));
    expect(view.memos[1].task).toBeGreaterThan(view.callTask);
    recordHistory('shown-after-call-wait', history);
  } finally {
    await system.sandbox.setLatency(0);
  }
});

it('writes a projection of more instructions than a local write takes on the task queue, at once', async () => {
  await system.sandbox.setLatency(0);
  const tenant = await system.newTenant();
  // Due a minute ago: every instruction is called in the run's first task. Due a moment after the
  // start, each waited on a timer of its own, and a loaded server (two lanes of tests share the
  // machine) may fire timers of one instant in separate tasks: the projections were then split.
  const due = inSeconds(-60);
  const many = LOCAL_WRITE_MAX_INSTRUCTIONS + 1;
  await placeOrder(
    tenant,
    'many',
    Array.from({ length: many }, (_, n) => cardPayment(`p${n}`, due)),
  );
  const history = await historyOnceCompleted(tenant, 'many', 60_000);
  const written = projectionsWritten(history);
  // Every instruction opened and was called at one instant: the projection after it carries them all.
  expect(written.filter((p) => p.instructions === many)).not.toEqual([]);
  // Small projections are local; a big one goes to the queue with no local attempt (a failed one is no projection, below).
  expect(written.every((p) => p.local === p.instructions <= LOCAL_WRITE_MAX_INSTRUCTIONS)).toBe(true);
  const localAttempts = (history.events ?? []).filter(
    (e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
  );
  expect(localAttempts).toHaveLength(written.filter((p) => p.local).length);
  recordHistory('big-projection-queued', history);
});

// A row held by another session: an embedded PGlite serves one session at a time, so none waits there.
it.skipIf(inject('databasePoolSize') === 1)(
  'ends a projection attempt’s statements with the attempt: a write a lock holds up does not outlive the attempts that gave up on it',
  async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'held', [cardPayment('later', '2031-06-01')]);
    await eventually(
      () =>
        system.orm.em.fork().count(OrderEvent, { tenantId: tenant.tenantId, orderRef: 'held', type: 'order.created' }),
      (n) => n === 1,
      { what: 'the first projection written' },
    );
    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'held'));
    const held = await holdRow('payment_order', 'tenant_id = $1 and order_ref = $2', [tenant.tenantId, 'held']);
    try {
      // Statements waiting on a lock of the order table: the writes of this order's projection. (Not
      // pg_blocking_pids: a row's later waiters wait on its first waiter, not on the blocker.)
      const waiting = () => held.waitingSince('update "payment_order"%');
      // An amendment's projection waits on the order's row: two local attempts give up (the first after
      // its 5 s, the second cut at the 6 s limit), then the task queue's attempt takes over.
      const amended = tenant.client
        .request('PATCH', '/v1/order-management/held/instructions/later', { body: { amount: '25.50' } })
        .catch((err: unknown) => err);
      const queuedEvent = await eventually(
        async () => ((await handle.fetchHistory()).events ?? []).find((e) => scheduled(e, 'projectOrder')),
        Boolean,
        { what: 'the projection handed to the task queue', timeoutMs: 30_000 },
      );
      // The local attempts' writes began before the hand-over, the queue's after it. (The second local
      // attempt still waits up to its own 5 s beside the queue's: sdk-core does not stop it.)
      const handedOverAt = tsToDate(queuedEvent!.eventTime!);
      const queuesAlone = (since: Date[]) => since.length === 1 && since[0] >= handedOverAt;
      // The attempts given up on end their statements (each within its own 5 s): the queue's alone waits.
      await eventually(waiting, queuesAlone, { what: "the queue's write alone waiting on the row", timeoutMs: 20_000 });
      for (const until = Date.now() + 3_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200)))
        expect(await waiting()).toHaveLength(1);
      expect(await amended).toMatchObject({ status: 200 });
    } finally {
      await held.release();
    }
    await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/held')).body,
      (order: any) => order.instructions[0].amount === '25.50',
      { what: 'the amendment in the read model once the row is free', timeoutMs: 30_000 },
    );
  },
);
