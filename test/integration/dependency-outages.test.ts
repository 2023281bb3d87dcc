import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentOrder } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { openDatabase } from '../../db/orm.js';
import { connectApiToTemporal } from '../../temporal/connection.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { eventually } from '../support/eventually.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { lane } from '../support/lanes.js';

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

const instruction = (ref: string) => ({
  instructionRef: ref,
  direction: 'DEBIT',
  amount: '10.00',
  currency: 'EUR',
  country: 'FR',
  openDate: '2031-01-01',
  dueDate: '2031-01-02',
  financialInstrumentId: 'card_visa_4242',
});

function expectOutage(res: { status: number; body: any; headers: Headers }, code: string) {
  expect(res.status).toBe(503);
  expect(res.body).toMatchObject({ status: 503, code });
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
}

describe('while a dependency is down', () => {
  it('answers 503 with Retry-After when the database cannot be reached, writes nothing, and serves again when it is back', async () => {
    const tenant = await system.newTenant();
    const proxy = await startTcpProxy(new URL(lane().databaseUrl));
    // A query waits at most 2 s for a connection here, as the API's pool would under an outage.
    const orm = await openDatabase({
      url: proxy.url,
      poolSize: 2,
      acquireTimeoutMs: 2_000,
      onWarning: () => undefined,
    });
    const { logger, lines } = capturingLogger('outage-api', 'info');
    const api = await system.startApi({ orm, logger });
    try {
      const client = tenant.clientAt(api.url);
      expect((await client.request('GET', '/v1/order-management')).status).toBe(200);
      // Taken before: what an order reads of its tenant is kept, so one during the outage gets as far
      // as its own statements.
      expect(
        (
          await client.request('POST', '/v1/order-management', {
            body: { orderRef: 'before-outage', instructions: [instruction('a')] },
          })
        ).status,
      ).toBe(202);
      // Its start marked (a statement of the API's own, a moment later), so none is cut under way.
      await eventually(
        () =>
          system.orm.em.fork().findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'before-outage' }),
        (order) => order.workflowStartedAt != null,
        { what: 'the order taken before marked started' },
      );

      proxy.cut();
      expectOutage(await client.request('GET', '/v1/order-management'), 'database_unavailable');
      expectOutage(
        await client.request('POST', '/v1/order-management', {
          body: { orderRef: 'during-outage', instructions: [instruction('a')] },
        }),
        'database_unavailable',
      );
      // A change made in a transaction: its BEGIN fails first, and says so (knex's own error was a 500).
      expectOutage(
        await client.request('POST', '/v1/customers', { body: { customerRef: 'during-outage' } }),
        'database_unavailable',
      );
      // An order naming a stored instrument, taken in a transaction of its own (it holds the
      // customer), alone and in a batch: its BEGIN fails first, and says so.
      const { financialInstrumentId: _, ...paidWithStored } = instruction('a');
      const naming = {
        orderRef: 'during-outage-stored',
        customerRef: 'CUS-outage',
        instructions: [{ ...paidWithStored, instrumentId: randomUUID() }],
      };
      expectOutage(await client.request('POST', '/v1/order-management', { body: naming }), 'database_unavailable');
      expectOutage(
        await client.request('POST', '/v1/order-management/batch', { body: { orders: [naming] } }),
        'database_unavailable',
      );
      expect((await fetch(`${api.url}/readyz`)).status).toBe(503);
      // The request's own line (pino-http, once the response has finished) is a warning naming the
      // outage: not an error with a made-up "failed with status code 503" and its stack.
      type Line = { level: number; msg: string; failure?: string; err?: unknown };
      const ofOutage = await eventually(
        () => lines.map((line) => JSON.parse(line) as Line).filter((line) => line.msg.endsWith('→ 503')),
        (found) => found.length >= 3,
        { what: 'the outage requests’ own lines' },
      );
      for (const line of ofOutage) {
        expect(line).toMatchObject({ level: 40, failure: 'dependency unavailable: database' });
        expect(line.err).toBeUndefined();
      }

      proxy.restore();
      const back = await eventually(
        () => client.request('GET', '/v1/order-management'),
        (res) => res.status === 200,
        { what: 'the API to serve again' },
      );
      expect(back.body.items.map((o: { orderRef: string }) => o.orderRef)).not.toContain('during-outage');
      for (const orderRef of ['during-outage', 'during-outage-stored'])
        expect(await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, orderRef })).toBe(0);
    } finally {
      await api.close();
      await orm.close();
      await proxy.close();
    }
  });

  it('answers 503 with Retry-After when Temporal cannot be reached, and still takes new orders (started once it is back)', async () => {
    const tenant = await system.newTenant();
    const proxy = await startTcpProxy(new URL(`grpc://${lane().temporalAddress}`));
    const connection = await connectApiToTemporal(new URL(proxy.url).host);
    const temporal = new Client({ connection });
    const { logger, lines } = capturingLogger('outage-api', 'warn');
    const api = await system.startApi({ temporal, logger });
    try {
      const client = tenant.clientAt(api.url);
      const created = await client.request('POST', '/v1/order-management', {
        body: { orderRef: 'running', instructions: [instruction('a')] },
      });
      expect(created.status).toBe(202);
      await eventually(
        () => system.orm.em.fork().findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'running' }),
        (o) => !!o.workflowStartedAt,
        {
          what: 'the workflow to start',
        },
      );

      proxy.cut();
      const asked = Date.now();
      expectOutage(
        await client.request('POST', '/v1/order-management/running/cancel', { body: {} }),
        'temporal_unavailable',
      );
      // Answered promptly, not after the SDK's default 20 s of retries.
      expect(Date.now() - asked).toBeLessThan(8_000);
      // The order is stored even so: the reconciler starts its workflow once Temporal answers.
      expect(
        (
          await client.request('POST', '/v1/order-management', {
            body: { orderRef: 'taken-while-down', instructions: [instruction('a')] },
          })
        ).status,
      ).toBe(202);
      // So are a batch's, and once one start has failed the rest are not tried (each would wait out its
      // deadline): the reconciler starts them.
      const batch = Array.from({ length: 40 }, (_, n) => ({
        orderRef: `batch-down-${n}`,
        instructions: [instruction('a')],
      }));
      const taken = await client.request('POST', '/v1/order-management/batch', { body: { orders: batch } });
      expect(taken.status).toBe(200);
      expect(taken.body.taken).toBe(40);
      const logged = lines.map(
        (line) => JSON.parse(line) as { msg: string; orderRef?: string; leftToReconciler?: number },
      );
      const tried = logged.filter(
        (line) => line.msg === 'could not start order workflow yet' && line.orderRef?.startsWith('batch-down-'),
      ).length;
      const left = logged.find((line) => line.msg.startsWith('order workflows not started'))?.leftToReconciler;
      expect(tried).toBeGreaterThan(0);
      expect(tried).toBeLessThanOrEqual(16);
      expect(tried + left!).toBe(40);

      proxy.restore();
      const cancelled = await eventually(
        () => client.request('POST', '/v1/order-management/running/cancel', { body: {} }),
        (res) => res.status === 200,
        {
          what: 'the cancel to go through',
          timeoutMs: 30_000,
        },
      );
      expect(cancelled.body.status).toBe('CANCELLED');
      // And the order taken while Temporal was down is started by the reconciler now that it answers.
      await eventually(
        async () => {
          await system.reconciler.runOnce();
          return system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null });
        },
        (unstarted) => unstarted === 0,
        { what: 'the orders taken while Temporal was down to be started', timeoutMs: 30_000 },
      );
      const described = await system.client.workflow
        .getHandle(orderWorkflowId(tenant.tenantId, 'taken-while-down'))
        .describe();
      expect(described.status.name).toBe('RUNNING');
    } finally {
      await api.close();
      await connection.close();
      await proxy.close();
    }
  }, 60_000);
});
