// Payments a worker makes per second when its provider is slow: the same burst of card payments due
// at one instant, first with the sandbox answering at once (the baseline), then with it taking
// `--latency` ms over every call. Payment activities hold no database connection while the
// provider answers, and a worker runs PAYMENT_CONCURRENCY (100) of them at once, where it used to
// run as many as its pool had connections (10): at 300 ms a call that capped it near 30 a second.
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- provider-latency --orders 300 --latency 300
import { parseArgs } from 'node:util';
import got from 'got';
import { loadConfig } from '../config.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { percentile } from './measure.js';
import { orderBurst } from './support/order-burst.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '300' },
    'per-order': { type: 'string', default: '1' },
    latency: { type: 'string', default: '300' },
    lead: { type: 'string', default: '30' },
  },
});
const shape = {
  orders: Number(values.orders),
  perOrder: Number(values['per-order']),
  leadMs: Number(values.lead) * 1000,
};
const total = shape.orders * shape.perOrder;
const latencyMs = Number(values.latency);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant, client } = await stack.newTenant('bench');
const providerLatency = (ms: number) => got.put(`${stack.sandboxUrl}/latency`, { json: { ms } });

async function burstAt(ms: number): Promise<number[]> {
  await providerLatency(ms);
  return (await orderBurst(client, stack.orm, tenant.tenantId, shape)).lags;
}

// Warmed first (connections, caches, the JIT), at once.
await burstAt(0).then(
  () => undefined,
  () => undefined,
);
const fast = await burstAt(0);
const slow = await burstAt(latencyMs);
await providerLatency(0);

const line = (label: string, lags: number[]) =>
  `  ${label}  ${(total / (lags.at(-1)! / 1000)).toFixed(1)} payments/s (all ${total} settled ${(lags.at(-1)! / 1000).toFixed(2)} s after due); lag p50 ${(percentile(lags, 50) / 1000).toFixed(2)} s p99 ${(percentile(lags, 99) / 1000).toFixed(2)} s`;
console.log(
  `provider latency: ${total} card payments (${shape.orders} orders x ${shape.perOrder}) due at one instant, one worker (PAYMENT_CONCURRENCY ${config.paymentConcurrency}, pool ${config.databaseUrl ? config.databasePoolSize : 1}); database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(line('provider answering at once (baseline)', fast));
console.log(line(`provider answering in ${latencyMs} ms     `, slow));
console.log(
  `  payments/s at ${latencyMs} ms / at 0 ms: ${(fast.at(-1)! / slow.at(-1)!).toFixed(2)} (a pool-sized cap of ${config.databasePoolSize} would allow at most ${((config.databasePoolSize * 1000) / latencyMs).toFixed(0)}/s)`,
);
await stack.stop();
