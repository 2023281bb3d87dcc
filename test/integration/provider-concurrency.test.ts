import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

// Payments are not capped by the database pool: a payment activity holds no pooled connection while
// the provider answers, so a worker has more calls in flight than it has connections.

const LATENCY_MS = 3000;
let system: TestSystem;
let tenant: TenantFixture;

beforeAll(async () => {
  system = await startSystem({ sandboxLatencyMs: LATENCY_MS });
  tenant = await system.newTenant();
});
afterAll(async () => {
  await system?.close();
});

it('has more provider calls in flight at once than the worker has database connections', async () => {
  const poolSize = inject('databasePoolSize');
  const count = poolSize * 2 + 5;
  const due = new Date(Date.now() + 1500).toISOString();
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef: 'wide',
      instructions: Array.from({ length: count }, (_, n) => ({
        instructionRef: `i${n}`,
        direction: 'DEBIT',
        amount: '1.00',
        currency: 'EUR',
        country: 'FR',
        openDate: due,
        dueDate: due,
        financialInstrumentId: 'card_visa_4242',
      })),
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const payments = await eventually(
    () => system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'wide' }),
    (items) => items.filter((item) => item.status === 'SETTLED').length === count,
    { what: `${count} payments settled`, timeoutMs: 60_000 },
  );
  // The provider records a payment as it answers, LATENCY_MS after the call arrived. Had no more
  // than `poolSize` calls been in flight, calls would have arrived in waves a latency apart, and no
  // span shorter than one latency would hold more than `poolSize` answers. One does (however slowly
  // a busy worker sent the rest).
  const answered = payments.map((item) => Date.parse(item.createdAt)).sort((a, b) => a - b);
  const mostWithinOneLatency = Math.max(
    ...answered.map((from) => answered.filter((at) => at >= from && at - from < LATENCY_MS).length),
  );
  expect(mostWithinOneLatency).toBeGreaterThan(poolSize);
});
