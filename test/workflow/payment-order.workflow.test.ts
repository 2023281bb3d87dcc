import { randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import got from 'got';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/create-activities.js';
import { buildOrder } from '../../api/orders/order-builder.js';
import type { CreateOrderInput } from '../../api/orders/schemas.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import { PaymentInstruction } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { orderWorkflowId } from '../../domain/order.js';
import { orderStateQuery } from '../../workflows/definitions.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { workflowInputOf } from '../../temporal/start-order-workflow.js';
import { bundlePaymentWorkflows } from '../../worker/create-worker.js';
import { paymentOrderWorkflow } from '../../workflows/payment-order.workflow.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../../scripts/free-port.js';
import { startSandbox, type RunningSandbox } from '../support/sandbox.js';
import { quietTemporalLogs } from '../support/system.js';
import { createTenantRows, resolvedTo } from '../support/tenant-rows.js';

const TASK_QUEUE = 'payments-time-skipping';
const DAY_MS = 24 * 60 * 60 * 1000;

let env: TestWorkflowEnvironment;
let orm: MikroORM;
let sandbox: RunningSandbox;
let workflowBundle: WorkflowBundleWithSourceMap;
const masterKeys = { current: randomBytes(32).toString('base64') };

beforeAll(async () => {
  quietTemporalLogs();
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: inject('timeSkippingServerPath') } },
  });
  // The Java server validates search attributes like a real one, so they are registered as in production.
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  orm = await openDatabase({ url: inject('databaseUrl'), poolSize: inject('databasePoolSize') });
  sandbox = await startSandbox();
  workflowBundle = await bundlePaymentWorkflows(new DefaultLogger('ERROR'));
});

afterAll(async () => {
  await sandbox?.close();
  await orm?.close();
  await env?.teardown();
});

/** Stores the order as the API would, and returns the workflow input built from the stored row. */
async function storeOrder(tenantId: string, input: CreateOrderInput, resolution = resolvedTo('SANDBOX_CARD', 'CARD')) {
  const em = orm.em.fork();
  const resolutions = input.instructions.map(() => resolution);
  const order = buildOrder(em, { id: tenantId, timeZone: null, dunningRetryDelaysDays: null }, input, resolutions);
  await em.flush();
  return workflowInputOf(order);
}

/** A fresh worker (a worker runs once) with real activities: projections go to the test database, payments over HTTP. */
function createWorker(sandboxUrl = sandbox.url) {
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowBundle,
    activities: createActivities({
      orm,
      masterKeys,
      apps: createAppRegistry(got, { sandboxUrl, callbackBaseUrl: 'http://127.0.0.1:9', outboundUrls: { allowLoopbackHttp: true } }),
    }),
  });
}

/** Runs the order's workflow to its end. */
async function runOrder(input: Awaited<ReturnType<typeof storeOrder>>, dunningDelaysMs?: number[]) {
  const worker = await createWorker();
  return worker.runUntil(
    env.client.workflow.execute(paymentOrderWorkflow, {
      workflowId: orderWorkflowId(input.tenantId, input.orderRef),
      taskQueue: TASK_QUEUE,
      args: [{ ...input, ...(dunningDelaysMs ? { dunningDelaysMs } : {}) }],
    }),
  );
}

describe('payment-order workflow on the time-skipping server', () => {
  it('runs a 12-instruction monthly schedule in order, in seconds of real time', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    // The server's clock, not ours: earlier tests have already skipped it ahead.
    const start = (await env.currentTimeMs()) + DAY_MS;
    const instructions = Array.from({ length: 12 }, (_, month) => {
      const open = new Date(start);
      open.setUTCMonth(open.getUTCMonth() + month);
      return {
        instructionRef: `premium-${String(month + 1).padStart(2, '0')}`,
        direction: 'DEBIT' as const,
        amount: '49.99',
        currency: 'GBP',
        country: 'GB',
        openDate: open.toISOString(),
        dueDate: new Date(open.getTime() + 7 * DAY_MS).toISOString(),
        financialInstrumentId: 'card_visa_4242',
      };
    });
    const input = await storeOrder(tenantId, { orderRef: 'monthly-12', instructions });

    const startedAt = Date.now();
    const result = await runOrder(input);
    const elapsedMs = Date.now() - startedAt;

    // A year of schedule in well under a minute means the server skipped the timers, not slept them.
    expect(elapsedMs).toBeLessThan(60_000);
    expect(result.status).toBe('COMPLETED');
    expect(result.instructions.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    result.instructions.forEach((state, index) => {
      expect(Date.parse(state.processingAt!)).toBeGreaterThanOrEqual(Date.parse(instructions[index].dueDate));
      if (index > 0) {
        expect(Date.parse(state.processingAt!)).toBeGreaterThan(Date.parse(result.instructions[index - 1].settledAt!));
      }
    });

    const payments = await sandbox.ledger({ tenantId, orderRef: 'monthly-12' });
    expect(payments.map((p) => p.idempotencyKey)).toEqual(instructions.map((i) => `${tenantId}:monthly-12:${i.instructionRef}:1`));
    expect(new Set(payments.map((p) => p.amountMinor))).toEqual(new Set(['4999']));

    const stored = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
    expect(stored.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    expect(stored.every((i) => i.amountMinor === 4999n)).toBe(true);
  });

  it('retries an insufficient-funds collection on the dunning schedule, then fails it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const open = new Date((await env.currentTimeMs()) + DAY_MS);
    const input = await storeOrder(tenantId, {
      orderRef: 'dunning-1',
      instructions: [
        {
          instructionRef: 'premium-1',
          direction: 'DEBIT',
          amount: '120.00',
          currency: 'EUR',
          country: 'DE',
          openDate: open.toISOString(),
          dueDate: new Date(open.getTime() + DAY_MS).toISOString(),
          financialInstrumentId: 'card_insufficient_funds',
        },
      ],
    });

    const result = await runOrder(input);

    const [state] = result.instructions;
    expect(state).toMatchObject({ status: 'FAILED', attempts: 4, failureCode: 'insufficient_funds' });
    // Three retries, one, three and five days after each decline (the default schedule).
    const failedAfterDueMs = Date.parse(state.failedAt!) - Date.parse(input.instructions[0].dueAt);
    expect(failedAfterDueMs).toBeGreaterThanOrEqual(9 * DAY_MS);
    expect(failedAfterDueMs).toBeLessThan(10 * DAY_MS);
    // Each retry after a decline is a new payment attempt with its own idempotency key.
    const payments = await sandbox.ledger({ tenantId, orderRef: 'dunning-1' });
    expect(payments.map((p) => p.idempotencyKey.split(':').at(-1))).toEqual(['1', '2', '3', '4']);
    expect(payments.every((p) => p.status === 'DECLINED')).toBe(true);
  });

  it('asks an unanswering provider again with the same key until it answers, so the customer pays once', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const open = new Date((await env.currentTimeMs()) + DAY_MS);
    const input = await storeOrder(tenantId, {
      orderRef: 'outage-1',
      instructions: [
        {
          instructionRef: 'premium-1',
          direction: 'DEBIT',
          amount: '30.00',
          currency: 'EUR',
          country: 'FR',
          openDate: open.toISOString(),
          dueDate: new Date(open.getTime() + DAY_MS).toISOString(),
          financialInstrumentId: 'card_visa_4242',
        },
      ],
    });
    // A port with nothing listening yet: the provider is down when the instruction falls due.
    const port = await freePort();

    const worker = await createWorker(`http://127.0.0.1:${port}`);
    let revived: RunningSandbox | undefined;
    try {
      const result = await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(paymentOrderWorkflow, {
          workflowId: orderWorkflowId(tenantId, 'outage-1'),
          taskQueue: TASK_QUEUE,
          args: [input],
        });
        const finished = handle.result();
        const late = await eventually(
          () => handle.query(orderStateQuery),
          (state) => state.instructions[0].status === 'LATE',
          { what: 'instruction LATE after the provider stayed down', timeoutMs: 60_000 },
        );
        // Skipped time may already have brought further unanswered hourly attempts: at least one.
        expect(late.instructions[0].failureCode).toBe('provider_unavailable');
        expect(late.instructions[0].attempts).toBeGreaterThanOrEqual(1);
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

  it('asks the provider for the result of a PENDING payment whose callback never comes', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const open = new Date((await env.currentTimeMs()) + DAY_MS);
    const input = await storeOrder(
      tenantId,
      {
        orderRef: 'silent-bank',
        instructions: [
          {
            instructionRef: 'debit-1',
            direction: 'DEBIT',
            amount: '80.00',
            currency: 'EUR',
            country: 'NL',
            openDate: open.toISOString(),
            dueDate: new Date(open.getTime() + DAY_MS).toISOString(),
            financialInstrumentId: 'bank_no_callback',
          },
        ],
      },
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const result = await runOrder(input);
    expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', appId: 'SANDBOX_BANK', attempts: 1 });
    // Settled from a status query: the provider took one payment, and sent no callback.
    const payments = await sandbox.ledger({ tenantId, orderRef: 'silent-bank' });
    expect(payments.map((p) => [p.status, p.appId])).toEqual([['SETTLED', 'SANDBOX_BANK']]);
    expect(Date.parse(result.instructions[0].settledAt!) - Date.parse(input.instructions[0].dueAt)).toBeGreaterThanOrEqual(5 * 60_000);
  });
});
