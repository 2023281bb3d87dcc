import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PaymentInstruction } from '../../db/entities/index.js';
import { eventually } from '../support/eventually.js';
import { startSystem, type TestSystem } from '../support/system.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

let system: TestSystem;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  system = await startSystem({ worker: false });
});
afterAll(async () => {
  worker?.kill('SIGKILL');
  await system?.close();
});

/** `npm run worker`, as a deployment runs it: its own process, configured by its environment. */
function startWorker(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: inject('databaseUrl'),
      DATABASE_POOL_SIZE: String(inject('databasePoolSize') === 1 ? 4 : 10),
      MASTER_KEY: system.masterKey,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      SANDBOX_URL: system.sandbox.url,
      PUBLIC_API_URL: system.api.url,
      ALLOW_LOOPBACK_HTTP: 'true',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM')
      console.error(`worker exited with ${code}: ${stderr}`);
  });
  return child;
}

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
    worker = startWorker();
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
    const atKill = await ledgerSize();
    expect(atKill).toBeLessThan(90); // killed in the middle, not after
    // The payments the dead worker had in flight: heartbeats let Temporal see it die within seconds.
    const interrupted = await system.orm.em
      .fork()
      .find(PaymentInstruction, { tenantId: tenant.tenantId, status: 'PROCESSING' }, { populate: ['order'] });
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
    for (const row of interrupted) {
      const at = charged.get(`${row.order.orderRef}/${row.instructionRef}`);
      expect(at, `${row.order.orderRef}/${row.instructionRef}`).toBeDefined();
      expect(at! - killedAt, `${row.order.orderRef}/${row.instructionRef} completed after the kill`).toBeLessThan(
        30_000,
      );
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
