// Order intake through the whole stack: HMAC sign-in, validation, scheme resolution, the insert, the
// workflow start. Starts its own Temporal dev server and uses DATABASE_URL (or an embedded PGlite),
// sends a bounded number of orders from one process on loopback, and prints throughput and latency
// percentiles, with a GET of one order measured in the same run as the baseline (this machine is
// noisy: compare the ratio, not the absolute numbers).  npm run bench -- order-intake --orders 300 --concurrency 8
import { parseArgs } from 'node:util';
import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { loadConfig } from '../config.js';
import { startLocalStack } from '../scripts/local-stack.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '300' }, concurrency: { type: 'string', default: '8' }, instructions: { type: 'string', default: '12' } },
});
const orders = Number(values.orders);
const concurrency = Number(values.concurrency);
const instructionsPerOrder = Number(values.instructions);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant } = await stack.newTenant('bench');
const client = new PaymentSchedulerClient({ baseUrl: stack.api.url, publicKey: tenant.publicKey, privateKey: tenant.privateKey, tenantId: tenant.tenantId });

function orderBody(index: number) {
  return {
    orderRef: `bench-${index}`,
    instructions: Array.from({ length: instructionsPerOrder }, (_, month) => ({
      instructionRef: `premium-${month + 1}`,
      direction: 'DEBIT',
      amount: '49.99',
      currency: 'EUR',
      country: 'DE',
      openDate: `${2030 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, '0')}-01`,
      dueDate: `${2030 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, '0')}-08`,
      financialInstrumentId: 'card_visa_4242',
    })),
  };
}

async function measure(count: number, call: (index: number) => Promise<number>): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        const t0 = performance.now();
        const status = await call(index);
        if (status >= 300) throw new Error(`request ${index} answered ${status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(1);
await client.accessToken();
await client.request('POST', '/v1/order-management', { body: orderBody(-1) }); // warm-up

const intake = await measure(orders, async (i) => (await client.request('POST', '/v1/order-management', { body: orderBody(i) })).status);
const reads = await measure(orders, async (i) => (await client.request('GET', `/v1/order-management/bench-${i}`)).status);

console.log(`order intake: ${orders} orders x ${instructionsPerOrder} instructions, concurrency ${concurrency}, database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}`);
console.log(`  POST /v1/order-management  ${(orders / intake.seconds).toFixed(1)} orders/s   p50 ${pct(intake.latencies, 50)} ms  p95 ${pct(intake.latencies, 95)} ms  p99 ${pct(intake.latencies, 99)} ms`);
console.log(`  GET  /v1/order-management/{ref}  ${(orders / reads.seconds).toFixed(1)} reads/s   p50 ${pct(reads.latencies, 50)} ms  p95 ${pct(reads.latencies, 95)} ms`);
console.log(`  intake p50 / read p50 = ${(Number(pct(intake.latencies, 50)) / Number(pct(reads.latencies, 50))).toFixed(2)}`);

await stack.stop();
