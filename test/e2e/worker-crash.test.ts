import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentInstruction, PaymentRefund } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { orderStateQuery } from '../../orders/contract/messages.js';
import { freePort } from '../../observability/free-port.js';
import { providerNet } from '../support/sandbox.js';
import { paymentCallsInFlight } from '../support/calls-in-flight.js';
import { eventually } from '../support/eventually.js';
import { startProcess, stopStartedProcesses } from '../support/processes.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  system = await startSystem({ worker: false, sandboxSettleMs: 3000 });
});
afterAll(async () => {
  await stopStartedProcesses();
  await system?.close();
});

/** `npm run worker`, as a deployment runs it. */
const startWorker = (env: Record<string, string> = {}): ChildProcess => startProcess(system, 'worker/main.ts', env);

describe('a worker killed in the middle of a burst of collections', () => {
  it('leaves every instruction SETTLED exactly once after it starts again, the ledger and the read model agreeing to the minor unit', async () => {
    const tenant = await system.newTenant();
    const due = new Date(Date.now() + 3000).toISOString();
    const orders = ['burst-a', 'burst-b', 'burst-c'];
    for (const [o, orderRef] of orders.entries()) {
      const instructions = Array.from({ length: 30 }, (_, n) => ({
        instructionRef: `i-${n}`,
        direction: 'DEBIT',
        amount: `${o + 1}.${String(n).padStart(2, '0')}`,
        currency: 'EUR',
        country: 'FR',
        openDate: due,
        dueDate: due,
        // Every first call answers 503: each collection is retried, which keeps the burst in flight for seconds.
        financialInstrumentId: 'card_flaky',
      }));
      const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
      expect(res.status).toBe(202);
    }
    // Five calls at a time, each answered in 300 ms: the burst lasts seconds, so the kill comes in its middle.
    await system.sandbox.setLatency(300);
    worker = startWorker({ PAYMENT_CONCURRENCY: '5' });
    const ledgerSize = async () =>
      (
        await Promise.all(orders.map((orderRef) => system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef })))
      ).flat().length;
    await eventually(ledgerSize, (n) => n >= 10, {
      what: 'the burst to be under way',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    worker.kill('SIGKILL');
    const killedAt = Date.now();
    await new Promise((resolve) => worker!.once('exit', resolve));
    await system.sandbox.setLatency(0);
    const atKill = await ledgerSize();
    expect(atKill).toBeLessThan(90); // killed in the middle, not after
    // The payments the dead worker had in flight: heartbeats let Temporal see it die within seconds.
    const interrupted = await paymentCallsInFlight(
      system.client,
      orders.map((orderRef) => orderWorkflowId(tenant.tenantId, orderRef)),
    );
    expect(interrupted.length).toBeGreaterThan(0);

    worker = startWorker();
    await eventually(
      () => system.orm.em.fork().count(PaymentInstruction, { tenantId: tenant.tenantId, status: 'SETTLED' }),
      (n) => n === 90,
      { what: 'every instruction SETTLED after the restart', timeoutMs: 60_000 },
    );
    // Each payment cut short completed at the provider within 30 s of the kill (heartbeat timeout, retry, restart).
    const charged = new Map(
      (await Promise.all(orders.map((orderRef) => system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef }))))
        .flat()
        .map((c) => [`${c.orderRef}/${c.instructionRef}`, Date.parse(c.createdAt)]),
    );
    for (const ref of interrupted) {
      const at = charged.get(ref);
      expect(at, ref).toBeDefined();
      expect(at! - killedAt, `${ref} completed after the kill`).toBeLessThan(30_000);
    }
    for (const orderRef of orders) {
      const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef });
      const rows = await system.orm.em
        .fork()
        .find(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef } });
      // One charge per instruction, under its first key, for exactly its amount.
      expect(charges.map((c) => c.instructionRef).sort()).toEqual(rows.map((r) => r.instructionRef).sort());
      expect(new Set(charges.map((c) => c.idempotencyKey.split(':').at(-1)))).toEqual(new Set(['1']));
      const amounts = new Map(rows.map((r) => [r.instructionRef, r.amountMinor.toString()]));
      for (const charge of charges) expect(charge.amountMinor).toBe(amounts.get(charge.instructionRef));
      expect(
        rows.every(
          (r) =>
            r.status === 'SETTLED' &&
            r.providerRef === charges.find((c) => c.instructionRef === r.instructionRef)!.providerRef,
        ),
      ).toBe(true);
    }
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker!.once('exit', resolve));
  }, 240_000);
});

describe('a worker killed while refunds and returns are in flight', () => {
  it('loses and doubles nothing: per instruction the provider’s net equals the read model’s, and each order’s memo', async () => {
    const tenant = await system.newTenant();
    const schemeId = await tenant.bankDebitScheme();
    // Open now, and paid now by the customer: a scheduled bank debit would wait out its customer's notice.
    const debit = (n: number) => ({
      instructionRef: `i-${n}`,
      direction: 'DEBIT',
      amount: `10.${String(n).padStart(2, '0')}`,
      currency: 'EUR',
      country: 'FR',
      openDate: new Date(Date.now() - 1000).toISOString(),
      dueDate: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      schemeId,
      paymentMethod: 'BANK_DEBIT',
    });
    // One order whose debits will be refunded, one whose debits the bank returns (1.5 s after settling).
    const instrumentOf = { refunded: 'bank_ok', returned: 'bank_returned' };
    for (const orderRef of Object.keys(instrumentOf)) {
      const instructions = Array.from({ length: 10 }, (_, n) => debit(n));
      const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
      expect(res.status).toBe(202);
    }
    worker = startWorker();
    await eventually(
      () => system.orm.em.fork().count(PaymentInstruction, { tenantId: tenant.tenantId, status: 'OPEN' }),
      (n) => n === 20,
      { what: 'the debits open', timeoutMs: 60_000 },
    );
    for (const [orderRef, instrument] of Object.entries(instrumentOf)) {
      for (let n = 0; n < 10; n++) {
        const paid = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/i-${n}/pay`, {
          body: { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', financialInstrumentId: instrument },
        });
        expect(paid.status, JSON.stringify(paid.body)).toBe(202);
      }
    }
    await eventually(
      () =>
        system.orm.em
          .fork()
          .count(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef: 'refunded' }, status: 'SETTLED' }),
      (n) => n === 10,
      { what: 'the first order settled', timeoutMs: 60_000 },
    );
    // Bank refunds stay PENDING at the provider for seconds; the worker is killed as soon as the first is
    // asked for, so some are PENDING at the provider, and some not yet called.
    const refund = (n: number) =>
      tenant.client.request('POST', `/v1/order-management/refunded/instructions/i-${n}/refunds`, {
        body: { amount: '5.00' },
        headers: { 'idempotency-key': `crash-refund-${n}` },
      });
    const asked = Promise.all(Array.from({ length: 10 }, (_, n) => refund(n)));
    const refundsAtProvider = async () =>
      (await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'refunded' })).filter(
        (i) => i.kind === 'REFUND',
      );
    await eventually(refundsAtProvider, (r) => r.length > 0, {
      what: 'a refund asked for',
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    worker.kill('SIGKILL');
    await new Promise((resolve) => worker!.once('exit', resolve));
    expect((await refundsAtProvider()).filter((r) => r.status === 'SUCCEEDED').length).toBeLessThan(10);
    // Asked while the worker was dead, some could not be answered (503): the client asks again, same key.
    const answers = await asked;
    expect(answers.every((a) => a.status === 201 || a.status === 503)).toBe(true);

    worker = startWorker();
    for (const [n, answer] of answers.entries()) {
      if (answer.status === 201) continue;
      // Until the new worker takes the order's tasks, its workflow cannot answer (503): asked again, as a client would.
      const again = await eventually(
        () => refund(n),
        (res) => res.status !== 503,
        { what: `refund ${n} answered after the restart`, timeoutMs: 60_000, intervalMs: 1000 },
      );
      expect(again.status, JSON.stringify(again.body)).toBe(201);
    }
    // Each refund as the read model shows it; if one does not end, how its workflow holds it too.
    await eventually(
      async () =>
        (
          await system.orm.em.fork().find(
            PaymentRefund,
            { tenantId: tenant.tenantId },
            {
              fields: ['instructionRef', 'status', 'providerRef', 'failureCode'],
              orderBy: { instructionRef: 'asc' },
            },
          )
        ).map((r) => [r.instructionRef, r.status, r.providerRef, r.failureCode].filter(Boolean).join(' ')),
      (refunds) => refunds.length === 10 && refunds.every((r) => r.includes(' SUCCEEDED')),
      { what: 'every refund SUCCEEDED after the restart', timeoutMs: 120_000 },
    ).catch(async (err: Error) => {
      const view = await system.client.workflow
        .getHandle(orderWorkflowId(tenant.tenantId, 'refunded'))
        .query(orderStateQuery)
        .then((v) => JSON.stringify(v.refunds))
        .catch((e: Error) => `not answered: ${e.message}`);
      throw new Error(`${err.message}; the workflow's refunds: ${view}`);
    });
    await eventually(
      () =>
        system.orm.em
          .fork()
          .count(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef: 'returned' }, status: 'LATE' }),
      (n) => n === 10,
      { what: 'every returned debit back on the dunning schedule', timeoutMs: 60_000 },
    );

    for (const orderRef of Object.keys(instrumentOf)) {
      const ledger = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef });
      const rows = await system.orm.em
        .fork()
        .find(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef } });
      for (const row of rows) {
        const mine = ledger.filter(
          (item) =>
            item.instructionRef === row.instructionRef ||
            ledger.some((p) => p.providerRef === item.paymentRef && p.instructionRef === row.instructionRef),
        );
        const readModelNet = row.settledAmountMinor - row.refundedAmountMinor - row.returnedAmountMinor;
        expect(providerNet(mine), `${orderRef}/${row.instructionRef}`).toBe(readModelNet);
      }
      // One refund per instruction at the provider, whatever was asked twice and whatever the kill cut short.
      if (orderRef === 'refunded') {
        expect(ledger.filter((i) => i.kind === 'REFUND').map((i) => i.idempotencyKey.split(':').at(-1))).toEqual(
          Array(10).fill('1'),
        );
      }
      const net = rows.reduce(
        (sum, r) => sum + r.settledAmountMinor - r.refundedAmountMinor - r.returnedAmountMinor,
        0n,
      );
      // The memo is upserted by the workflow task whose local write the rows come from, and shown once
      // that task completes, after the write: a restarted worker can take a moment longer.
      const netInMemo = async () => {
        const { memo } = await system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, orderRef)).describe();
        return (memo as { totals: { EUR: { netCollected: string } } }).totals.EUR.netCollected;
      };
      await eventually(netInMemo, (shown) => BigInt(shown) === net, {
        what: `${orderRef}'s memo to show ${net} net collected`,
        timeoutMs: 15_000,
      });
      expect(providerNet(ledger), `${orderRef} ledger`).toBe(net);
    }
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker!.once('exit', resolve));
  }, 240_000);
});

describe('a worker process', () => {
  it('serves its metrics and the Temporal SDK’s on WORKER_METRICS_PORT, to holders of METRICS_TOKEN', async () => {
    const port = await freePort();
    worker = startWorker({ WORKER_METRICS_PORT: String(port), METRICS_TOKEN: 'worker-scrape' });
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrape = (authorization?: string) =>
      fetch(url, { headers: authorization ? { authorization } : {} }).then(async (r) => ({
        status: r.status,
        text: await r.text(),
      }));
    // The SDK's gauges appear once its workers poll.
    const { text } = await eventually(
      () => scrape('Bearer worker-scrape').catch(() => ({ status: 0, text: '' })),
      (r) => r.status === 200 && r.text.includes('temporal_worker_task_slots_available'),
      { what: 'the worker’s metrics', timeoutMs: 60_000 },
    );
    for (const ours of [
      'payment_instructions_total',
      'payment_provider_call_seconds',
      'webhook_delivery_attempts_total',
    ])
      expect(text).toContain(`# TYPE ${ours} `);
    expect(text).toMatch(/^temporal_num_pollers\{/m);
    expect((await scrape()).status).toBe(401);
    expect((await scrape('Bearer worker-scrapE')).status).toBe(401);
    worker.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => worker!.once('exit', (exitCode) => resolve(exitCode)));
    expect(code).toBe(0);
  }, 120_000);
});
