import proto from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OrderEvent } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { eventually } from '../support/eventually.js';
import { recordHistory } from '../support/histories.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

// A payment call under way reaches the read model with its answer, in one projection, so that the
// read model's writes do not queue ahead of the payments in a burst; an update never waits for it.

const EventType = proto.temporal.api.enums.v1.EventType;
let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
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

async function providerLatency(ms: number) {
  const res = await fetch(`${system.sandbox.url}/latency`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms }),
  });
  expect(res.status).toBe(204);
}

async function placeOrder(tenant: TenantFixture, orderRef: string, instructions: unknown[]) {
  const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

it('projects a payment answered at once with its answer: one projection after the call, every event told in order', async () => {
  await providerLatency(0);
  const tenant = await system.newTenant();
  await placeOrder(tenant, 'answered', [cardPayment('a', inSeconds(1))]);
  await eventually(
    async () => (await tenant.client.request('GET', '/v1/order-management/answered')).body,
    (order: any) => order.status === 'COMPLETED',
    { what: 'the payment settled in the read model', timeoutMs: 30_000 },
  );
  const history = await system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'answered')).fetchHistory();
  const events = history.events ?? [];
  const activityOf = (e: proto.temporal.api.history.v1.IHistoryEvent) =>
    e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
      ? e.activityTaskScheduledEventAttributes?.activityType?.name
      : undefined;
  const call = events.findIndex((e) => activityOf(e) === 'executePayment');
  const answered = events.findIndex((e, i) => i > call && e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
  expect(call).toBeGreaterThan(0);
  // Nothing projected while the call was out; once, after its answer.
  const projections = events.map((e, i) => (activityOf(e) === 'projectOrder' ? i : -1)).filter((i) => i >= 0);
  expect(projections.filter((i) => i > call && i < answered)).toEqual([]);
  expect(projections.filter((i) => i > answered)).toHaveLength(1);
  recordHistory('projected-with-answer', history);
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
  // The provider takes 8 s to answer: longer than an update waits for the read model (5 s).
  await providerLatency(8_000);
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
  } finally {
    await providerLatency(0);
  }
});
