import { randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, type LogEntry } from '@temporalio/worker';
import got from 'got';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createWebhookActivities, MAX_UNRECORDED_SENDS } from '../../webhooks/attempt-delivery.js';
import { OrderEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { sealedContext } from '../../db/sealed-columns.js';
import { SecretBox } from '../../db/secret-box.js';
import { webhookDeliveryAttempts } from '../../observability/metrics.js';
import { DELIVERY_SCHEDULE_MS, type EventType } from '../../domain/webhook.js';
import { webhookDeliveryWorkflow } from '../../webhooks/workflow/webhook-delivery.workflow.js';
import { recordHistory } from '../support/histories.js';
import { startTimeSkippingEnvironment } from '../support/time-skipping.js';
import { quietTemporalLogs } from '../support/system.js';
import { createTenantRows } from '../support/tenant-rows.js';
import { startWebhookReceiver, type Answer } from '../support/webhook-receiver.js';
import { lane } from '../support/lanes.js';
import { testWorkflowBundle } from '../support/workflow-bundle.js';
import { eventually } from '../support/eventually.js';

const TASK_QUEUE = 'webhooks-time-skipping';

let env: TestWorkflowEnvironment;
let orm: MikroORM;
const masterKeys = { current: randomBytes(32).toString('base64') };
const box = SecretBox.fromMasterKeys(masterKeys);

beforeAll(async () => {
  quietTemporalLogs();
  env = await startTimeSkippingEnvironment();
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: inject('databasePoolSize') });
});

afterAll(async () => {
  await orm?.close();
  await env?.teardown();
});

/** An endpoint at `url`, one recorded event and its delivery there, written as the platform writes them. */
async function pendingDelivery(url: string, eventType: EventType) {
  const { tenantId } = await createTenantRows(orm, masterKeys, []);
  const em = orm.em.fork();
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const newEndpoint = (at: string) => {
    const id = randomUUID();
    return em.create(WebhookEndpoint, {
      id,
      tenantId,
      url: at,
      eventTypes: [],
      enabled: true,
      secretCiphertext: box.seal(secret, sealedContext('webhook_endpoint', id)),
      createdAt: new Date(),
      updatedAt: new Date(),
    });
  };
  const endpoint = newEndpoint(url);
  const endpointId = endpoint.id;
  // The tenant's other endpoint, which is told when this one dies.
  const other = newEndpoint('http://127.0.0.1:9/other');
  const eventId = randomUUID();
  const event = em.create(OrderEvent, {
    id: eventId,
    tenantId,
    eventKey: `order:o-1:${eventType}`,
    type: eventType,
    orderRef: 'o-1',
    occurredAt: new Date(),
    payload: JSON.stringify({ id: eventId, type: 'order.created', data: { order: { orderRef: 'o-1' } } }),
    createdAt: new Date(),
  });
  const delivery = em.create(WebhookDelivery, {
    id: randomUUID(),
    tenantId,
    endpointId,
    eventId,
    eventType: event.type,
    status: 'PENDING',
    attempts: 0,
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  await em.flush();
  return { endpoint, delivery, secret, other };
}

/** Runs one delivery to its end on a fresh worker, skipping the schedule's waits; returns its result and its timers. */
async function deliver(
  answer: (n: number) => Answer,
  eventType: EventType = 'order.created',
  query = '',
  start: { firstAttempt?: number; recorded?: { attempts: number; nextAttemptAt: Date } } = {},
) {
  const { firstAttempt, recorded } = start;
  const receiver = await startWebhookReceiver(answer);
  try {
    const { endpoint, delivery, secret, other } = await pendingDelivery(receiver.url + query, eventType);
    if (recorded) await orm.em.fork().nativeUpdate(WebhookDelivery, { id: delivery.id }, recorded);
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: testWorkflowBundle(),
      activities: createWebhookActivities({ orm, box, http: got, outboundUrls: { allowLoopbackHttp: true } }),
    });
    const workflowId = `webhook-${delivery.id}`;
    const result = await worker.runUntil(
      env.client.workflow.execute(webhookDeliveryWorkflow, {
        workflowId,
        taskQueue: TASK_QUEUE,
        args: [{ deliveryId: delivery.id, firstAttempt }],
      }),
    );
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const timersMs = (history.events ?? [])
      .map((event) => event.timerStartedEventAttributes?.startToFireTimeout)
      .filter((timeout) => timeout != null)
      .map((timeout) => Number(timeout.seconds ?? 0) * 1000 + Math.round((timeout.nanos ?? 0) / 1e6));
    const em = orm.em.fork();
    return {
      result,
      timersMs,
      history,
      received: receiver.received,
      verifies: (n: number) => receiver.verifies(receiver.received[n], secret),
      delivery: await em.findOneOrFail(WebhookDelivery, { id: delivery.id }),
      attempts: await em.find(WebhookAttempt, { deliveryId: delivery.id }, { orderBy: { attempt: 'asc' } }),
      endpoint: await em.findOneOrFail(WebhookEndpoint, { id: endpoint.id }),
      /** What the tenant's other endpoint is sent about this one: the operational events, by type. */
      told: async () => {
        const deliveries = await em.find(WebhookDelivery, { tenantId: delivery.tenantId, id: { $ne: delivery.id } });
        return {
          toOther: deliveries.filter((d) => d.endpointId === other.id).map((d) => d.eventType),
          toItself: deliveries.filter((d) => d.endpointId === endpoint.id).map((d) => d.eventType),
        };
      },
    };
  } finally {
    await receiver.close();
  }
}

describe('webhook delivery workflow on the time-skipping server', () => {
  it('tries a failing endpoint eight times over 27 hours, on the schedule, then gives up', async () => {
    const run = await deliver(() => ({ status: 500 }));
    expect(run.result).toBe('FAILED');
    expect(run.received).toHaveLength(8);
    expect(run.timersMs).toEqual(DELIVERY_SCHEDULE_MS.slice(1));
    expect(run.timersMs.reduce((a, b) => a + b, 0)).toBe(27 * 3600_000 + 35 * 60_000 + 5_000);
    // The same event every time: one webhook-id, the same body, each try signed afresh.
    expect(new Set(run.received.map((r) => r.id)).size).toBe(1);
    expect(new Set(run.received.map((r) => r.body)).size).toBe(1);
    expect(run.received.every((_, n) => run.verifies(n))).toBe(true);
    expect(run.delivery).toMatchObject({ status: 'FAILED', attempts: 8, nextAttemptAt: null });
    expect(run.attempts.map((a) => [a.attempt, a.statusCode])).toEqual(
      Array.from({ length: 8 }, (_, i) => [i + 1, 500]),
    );
    expect(run.attempts.slice(0, 7).every((a) => a.nextAttemptAt !== null)).toBe(true);
    expect(run.attempts[7].nextAttemptAt).toBeNull();
    // Eight failures in 27 simulated hours is not yet five days of failing: the endpoint stays on.
    expect(run.endpoint).toMatchObject({ enabled: true });
    expect(run.endpoint.failingSince).toBeInstanceOf(Date);
    // Given up: the tenant's other endpoint is told, never the one that failed.
    expect(await run.told()).toEqual({ toOther: ['webhook.delivery.exhausted'], toItself: [] });
    recordHistory('webhook-exhausted', run.history);
  });

  it('stops at the first 2xx, and an endpoint that recovers is no longer failing', async () => {
    const run = await deliver((n) => (n < 3 ? { status: 503 } : { status: 204 }));
    expect(run.result).toBe('SUCCEEDED');
    expect(run.received).toHaveLength(3);
    expect(run.timersMs).toEqual([5_000, 300_000]);
    expect(run.delivery).toMatchObject({ status: 'SUCCEEDED', attempts: 3 });
    expect(run.endpoint.failingSince).toBeNull();
  });

  it('waits as long as Retry-After asks when that is longer than the schedule', async () => {
    const run = await deliver((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 }));
    expect(run.result).toBe('SUCCEEDED');
    expect(run.timersMs).toEqual([3_600_000]);
    recordHistory('webhook-retry-after', run.history);
  });

  it('disables the endpoint on 410 Gone and tries no more', async () => {
    const run = await deliver(() => ({ status: 410 }), 'order.created', '/for-this-receiver-only?token=its-own');
    expect(run.result).toBe('FAILED');
    expect(run.received).toHaveLength(1);
    expect(run.timersMs).toEqual([]);
    expect(run.endpoint).toMatchObject({ enabled: false, disabledReason: expect.stringMatching(/410/) });
    // Disabled: told to the other endpoint, nothing to the dead one.
    expect(await run.told()).toEqual({ toOther: ['webhook.endpoint.disabled'], toItself: [] });
    // Told with its URL's origin alone: its path and query may hold a token for its own receiver.
    const told = await orm.em.fork().findOneOrFail(OrderEvent, {
      tenantId: run.delivery.tenantId,
      type: 'webhook.endpoint.disabled',
    });
    expect(JSON.parse(told.payload).data.endpoint).toEqual({
      endpointId: run.endpoint.id,
      url: new URL(run.endpoint.url).origin,
    });
    expect(told.payload).not.toMatch(/for-this-receiver-only|its-own/);
  });

  it('started again at a later try (its run had stopped), goes on with the schedule from there and never past its eighth', async () => {
    const run = await deliver(() => ({ status: 500 }), 'order.created', '', { firstAttempt: 7 });
    expect(run.result).toBe('FAILED');
    expect(run.received).toHaveLength(2);
    expect(run.timersMs).toEqual([DELIVERY_SCHEDULE_MS[7]]);
    expect(run.attempts.map((a) => a.attempt)).toEqual([7, 8]);
    expect(run.delivery).toMatchObject({ status: 'FAILED', attempts: 8 });
  });

  it('never sends again a try already recorded (the stopped run’s try committed after the new run was started from it): it waits for the next', async () => {
    const nextAttemptAt = new Date(Date.now() + 600_000);
    const run = await deliver(() => ({ status: 500 }), 'order.created', '', {
      firstAttempt: 7,
      recorded: { attempts: 7, nextAttemptAt },
    });
    expect(run.result).toBe('FAILED');
    expect(run.received).toHaveLength(1);
    expect(run.attempts.map((a) => a.attempt)).toEqual([8]);
    expect(run.delivery).toMatchObject({ status: 'FAILED', attempts: 8 });
    // The wait before try 8 is the one try 7 recorded, not the schedule's afresh.
    expect(run.timersMs).toHaveLength(1);
    expect(run.timersMs[0]).toBeGreaterThan(0);
    expect(run.timersMs[0]).toBeLessThanOrEqual(600_000);
  });

  it('tells nobody when a delivery of such news is itself given up: two dead endpoints never tell each other for ever', async () => {
    const run = await deliver(() => ({ status: 500 }), 'webhook.endpoint.disabled');
    expect(run.result).toBe('FAILED');
    expect(await run.told()).toEqual({ toOther: [], toItself: [] });
  });
});

describe('a try of a webhook delivery', () => {
  /** One try, run as a worker runs it (its context, its logger), outside a workflow. */
  const attemptDelivery = (
    input: { deliveryId: string; attempt: number },
    {
      workerBox = box,
      logged = [],
      heartbeatDetails,
      heartbeats = [],
    }: { workerBox?: SecretBox; logged?: LogEntry[]; heartbeatDetails?: unknown; heartbeats?: unknown[] } = {},
  ) => {
    const activities = createWebhookActivities({
      orm,
      box: workerBox,
      http: got,
      outboundUrls: { allowLoopbackHttp: true },
    });
    // Kept, not printed: a failing try is what some tests here expect.
    const logger = new DefaultLogger('WARN', (entry) => logged.push(entry));
    const environment = new MockActivityEnvironment({ heartbeatDetails }, { logger });
    environment.on('heartbeat', (details: unknown) => heartbeats.push(details));
    return environment.run((i: typeof input) => activities.attemptDelivery(i), input);
  };

  it.each([410, 500])(
    'answered %i by a URL the endpoint left while the try was under way changes nothing of the endpoint, and the next try goes where it now is',
    async (status) => {
      const moved = await startWebhookReceiver(() => ({ status: 204 }));
      let endpointId = '';
      const left = await startWebhookReceiver(async () => {
        // The tenant moves its receiver while the try is under way (as PATCH does: a new URL, not failing).
        await orm.em.fork().nativeUpdate(WebhookEndpoint, { id: endpointId }, { url: moved.url, failingSince: null });
        return { status };
      });
      try {
        const { endpoint, delivery, other } = await pendingDelivery(left.url, 'order.created');
        endpointId = endpoint.id;
        expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).toMatchObject({ done: false });
        const em = orm.em.fork();
        expect(await em.findOneOrFail(WebhookEndpoint, { id: endpoint.id })).toMatchObject({
          url: moved.url,
          enabled: true,
          failingSince: null,
        });
        expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 2 })).toEqual({
          done: true,
          status: 'SUCCEEDED',
        });
        expect(moved.received).toHaveLength(1);
        // No disabling happened, so none was told.
        expect(await em.count(WebhookDelivery, { endpointId: other.id })).toBe(0);
      } finally {
        await left.close();
        await moved.close();
      }
    },
  );

  it.each([1, DELIVERY_SCHEDULE_MS.length])(
    'number %i, ending after the try Temporal ran in its place (its time limit passed) was recorded, changes nothing',
    async (attempt) => {
      let answerFirst!: (answer: Answer) => void;
      const firstAnswer = new Promise<Answer>((resolve) => (answerFirst = resolve));
      const receiver = await startWebhookReceiver((n) => (n === 1 ? firstAnswer : { status: 204 }));
      try {
        const { endpoint, delivery, other } = await pendingDelivery(receiver.url, 'order.created');
        await orm.em.fork().nativeUpdate(WebhookDelivery, { id: delivery.id }, { attempts: attempt - 1 });
        const logged: LogEntry[] = [];
        const overtaken = attemptDelivery({ deliveryId: delivery.id, attempt }, { logged });
        await eventually(
          () => receiver.received.length,
          (n) => n === 1,
          { what: 'the first run of the try sent' },
        );
        expect(await attemptDelivery({ deliveryId: delivery.id, attempt })).toEqual({
          done: true,
          status: 'SUCCEEDED',
        });
        // The first run's answer comes last: a failure that, counted, would make the delivery PENDING
        // again (sent once more) or, on the last try, FAILED and told to the tenant's other endpoint.
        answerFirst({ status: 500 });
        expect(await overtaken).toEqual({ done: true, status: 'SUCCEEDED' });
        const em = orm.em.fork();
        expect(await em.findOneOrFail(WebhookDelivery, { id: delivery.id })).toMatchObject({
          status: 'SUCCEEDED',
          attempts: attempt,
          nextAttemptAt: null,
        });
        expect(
          (await em.find(WebhookAttempt, { deliveryId: delivery.id })).map((a) => [a.attempt, a.statusCode]),
        ).toEqual([[attempt, 204]]);
        expect(await em.findOneOrFail(WebhookEndpoint, { id: endpoint.id })).toMatchObject({
          enabled: true,
          failingSince: null,
        });
        expect(await em.count(WebhookDelivery, { endpointId: other.id })).toBe(0);
        expect(logged.map((entry) => entry.message)).toContainEqual(expect.stringMatching(/overtaken/));
      } finally {
        await receiver.close();
      }
    },
  );

  it('of a type its endpoint no longer takes is not sent again, and ends', async () => {
    const receiver = await startWebhookReceiver(() => ({ status: 204 }));
    try {
      const { endpoint, delivery } = await pendingDelivery(receiver.url, 'order.created');
      // The tenant narrowed the endpoint to other types after the event was recorded for it.
      await orm.em.fork().nativeUpdate(WebhookEndpoint, { id: endpoint.id }, { eventTypes: ['instruction.settled'] });
      expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).toEqual({ done: true, status: 'SKIPPED' });
      expect(receiver.received).toHaveLength(0);
      expect(await orm.em.fork().findOneOrFail(WebhookDelivery, { id: delivery.id })).toMatchObject({
        status: 'FAILED',
        attempts: 0,
        nextAttemptAt: null,
      });
      // Widened again to take it: a delivery of it goes.
      const again = await pendingDelivery(receiver.url, 'order.created');
      await orm.em
        .fork()
        .nativeUpdate(
          WebhookEndpoint,
          { id: again.endpoint.id },
          { eventTypes: ['instruction.settled', 'order.created'] },
        );
      expect(await attemptDelivery({ deliveryId: again.delivery.id, attempt: 1 })).toMatchObject({
        done: true,
        status: 'SUCCEEDED',
      });
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('whose endpoint is deleted while it is under way ends there, recording nothing', async () => {
    let endpointId = '';
    const receiver = await startWebhookReceiver(async () => {
      await orm.em.fork().nativeDelete(WebhookEndpoint, { id: endpointId });
      return { status: 500 };
    });
    try {
      const { endpoint, delivery } = await pendingDelivery(receiver.url, 'order.created');
      endpointId = endpoint.id;
      expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).toEqual({ done: true, status: 'SKIPPED' });
      expect(receiver.received).toHaveLength(1);
      expect(await orm.em.fork().count(WebhookDelivery, { id: delivery.id })).toBe(0);
    } finally {
      await receiver.close();
    }
  });

  it(`sent ${MAX_UNRECORDED_SENDS} times by runs whose answers could not be recorded is recorded as not sent, and the schedule goes on`, async () => {
    const receiver = await startWebhookReceiver(() => ({ status: 204 }));
    try {
      const { delivery } = await pendingDelivery(receiver.url, 'order.created');
      // A run tells the runs after it that it sent (Temporal keeps its heartbeat across retries).
      const heartbeats: unknown[] = [];
      const recorded = async () =>
        (await webhookDeliveryAttempts.get()).values.find((v) => v.labels.outcome === 'unrecorded')?.value ?? 0;
      const before = await recorded();
      expect(
        await attemptDelivery(
          { deliveryId: delivery.id, attempt: 1 },
          { heartbeatDetails: { sent: MAX_UNRECORDED_SENDS - 1 }, heartbeats },
        ),
      ).toEqual({ done: true, status: 'SUCCEEDED' });
      expect(heartbeats).toEqual([{ sent: MAX_UNRECORDED_SENDS }]);
      expect(receiver.received).toHaveLength(1);

      const { delivery: again, endpoint } = await pendingDelivery(receiver.url, 'order.created');
      expect(
        await attemptDelivery(
          { deliveryId: again.id, attempt: 1 },
          { heartbeatDetails: { sent: MAX_UNRECORDED_SENDS }, heartbeats },
        ),
      ).toEqual({ done: false, retryInMs: DELIVERY_SCHEDULE_MS[1] });
      // Our failure to record, not the endpoint's: its streak of failures does not start.
      expect(await orm.em.fork().findOneOrFail(WebhookEndpoint, { id: endpoint.id })).toMatchObject({
        failingSince: null,
        lastFailedAt: null,
      });
      expect(receiver.received).toHaveLength(1);
      expect(await recorded()).toBe(before + 1);
      const [attempt] = await orm.em.fork().find(WebhookAttempt, { deliveryId: again.id });
      expect(attempt).toMatchObject({ attempt: 1, statusCode: null, error: expect.stringMatching(/not sent again/) });
      // The schedule's next try is a new run, and sends.
      expect(await attemptDelivery({ deliveryId: again.id, attempt: 2 })).toEqual({ done: true, status: 'SUCCEEDED' });
      expect(receiver.received).toHaveLength(2);
    } finally {
      await receiver.close();
    }
  });

  it('is not sent while the endpoint’s secret does not open in this worker: counted unsigned, logged naming the endpoint, nothing recorded', async () => {
    const receiver = await startWebhookReceiver(() => ({ status: 204 }));
    try {
      const { endpoint, delivery } = await pendingDelivery(receiver.url, 'order.created');
      const unsigned = async () =>
        (await webhookDeliveryAttempts.get()).values.find((v) => v.labels.outcome === 'unsigned')?.value ?? 0;
      const before = await unsigned();
      const logged: LogEntry[] = [];
      // A worker not given the master key the secret is sealed under (a rotation not rolled out to it).
      const elsewhere = SecretBox.fromMasterKeys({ current: randomBytes(32).toString('base64') });
      await expect(
        attemptDelivery({ deliveryId: delivery.id, attempt: 1 }, { workerBox: elsewhere, logged }),
      ).rejects.toThrow(/does not hold/);
      expect(await unsigned()).toBe(before + 1);
      expect(logged.filter((entry) => /secret/.test(entry.message))).toEqual([
        expect.objectContaining({
          level: 'WARN',
          message: expect.stringMatching(/secret does not open/),
          meta: expect.objectContaining({
            tenantId: delivery.tenantId,
            endpointId: endpoint.id,
            deliveryId: delivery.id,
          }),
        }),
      ]);
      expect(receiver.received).toHaveLength(0);
      // The try is still the endpoint's to have: a worker holding the key sends it as try 1.
      expect(await orm.em.fork().findOneOrFail(WebhookDelivery, { id: delivery.id })).toMatchObject({
        status: 'PENDING',
        attempts: 0,
      });
      expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).toEqual({
        done: true,
        status: 'SUCCEEDED',
      });
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  /** A second event, and its delivery to the same endpoint as `delivery`. */
  async function anotherDelivery(delivery: WebhookDelivery) {
    const em = orm.em.fork();
    const eventId = randomUUID();
    em.create(OrderEvent, {
      id: eventId,
      tenantId: delivery.tenantId,
      eventKey: `order:o-2:order.created`,
      type: 'order.created',
      orderRef: 'o-2',
      occurredAt: new Date(),
      payload: JSON.stringify({ id: eventId, type: 'order.created', data: { order: { orderRef: 'o-2' } } }),
      createdAt: new Date(),
    });
    const second = em.create(WebhookDelivery, {
      ...delivery,
      id: randomUUID(),
      eventId,
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    await em.flush();
    return second;
  }

  it('answered 410 to two tries at once disables the endpoint once, tells of it once, and ends both deliveries', async () => {
    let bothIn!: () => void;
    const arrived = new Promise<void>((resolve) => (bothIn = resolve));
    const hooks = await startWebhookReceiver(async (n) => {
      if (n === 2) bothIn();
      await arrived;
      return { status: 410 };
    });
    try {
      const { endpoint, delivery, other } = await pendingDelivery(hooks.url, 'order.created');
      const second = await anotherDelivery(delivery);
      const outcomes = await Promise.all([
        attemptDelivery({ deliveryId: delivery.id, attempt: 1 }),
        attemptDelivery({ deliveryId: second.id, attempt: 1 }),
      ]);
      expect(outcomes).toEqual([
        { done: true, status: 'FAILED' },
        { done: true, status: 'FAILED' },
      ]);
      const em = orm.em.fork();
      expect(await em.findOneOrFail(WebhookEndpoint, { id: endpoint.id })).toMatchObject({ enabled: false });
      expect(
        (await em.find(WebhookDelivery, { id: [delivery.id, second.id] })).map((d) => [d.status, d.nextAttemptAt]),
      ).toEqual([
        ['FAILED', null],
        ['FAILED', null],
      ]);
      // One disabling, told once; neither delivery told as exhausted, the disabling says it all.
      expect((await em.find(WebhookDelivery, { endpointId: other.id })).map((d) => d.eventType)).toEqual([
        'webhook.endpoint.disabled',
      ]);
    } finally {
      await hooks.close();
    }
  });

  it('failed at an endpoint disabled while the try was under way ends the delivery, told of by nobody', async () => {
    let endpointId = '';
    const hooks = await startWebhookReceiver(async () => {
      await orm.em.fork().nativeUpdate(WebhookEndpoint, { id: endpointId }, { enabled: false });
      return { status: 500 };
    });
    try {
      const { endpoint, delivery, other } = await pendingDelivery(hooks.url, 'order.created');
      endpointId = endpoint.id;
      expect(await attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).toEqual({ done: true, status: 'FAILED' });
      expect(await orm.em.fork().count(WebhookDelivery, { endpointId: other.id })).toBe(0);
    } finally {
      await hooks.close();
    }
  });

  it('fails, to be retried by Temporal, when this worker cannot open the endpoint’s secret: no try is counted against the endpoint', async () => {
    const hooks = await startWebhookReceiver();
    try {
      const { endpoint, delivery } = await pendingDelivery(hooks.url, 'order.created');
      // Sealed under a master key this worker does not hold (one rolled out to other workers first).
      const elsewhere = SecretBox.fromMasterKeys({ current: randomBytes(32).toString('base64') });
      const em = orm.em.fork();
      await em.nativeUpdate(
        WebhookEndpoint,
        { id: endpoint.id },
        { secretCiphertext: elsewhere.seal('whsec_other', sealedContext('webhook_endpoint', endpoint.id)) },
      );
      await expect(attemptDelivery({ deliveryId: delivery.id, attempt: 1 })).rejects.toThrow(/master key/);
      expect(hooks.received).toHaveLength(0);
      expect(await em.count(WebhookAttempt, { deliveryId: delivery.id })).toBe(0);
      expect(await em.findOneOrFail(WebhookDelivery, { id: delivery.id })).toMatchObject({
        status: 'PENDING',
        attempts: 0,
      });
      expect(await em.findOneOrFail(WebhookEndpoint, { id: endpoint.id })).toMatchObject({ failingSince: null });
    } finally {
      await hooks.close();
    }
  });
});
