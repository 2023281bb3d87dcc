// Bulk intake: `--orders` orders of 12 instructions taken through POST /v1/order-management/batch,
// `--batch` at a time, against the baseline of the same run: `--singles` of the same orders taken
// one request each (POST /v1/order-management) at concurrency 8. Prints orders/s for both and this
// process's resident memory as the batches go (it holds the API; bounded: it must not grow with the
// number of batches). No worker runs: the workflows are started and wait for one.
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- batch-intake --orders 100000 --batch 1000 --singles 2000
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { monthlyPremiums } from './support/order-burst.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '1000' },
    singles: { type: 'string', default: '2000' },
  },
});
const total = Number(values.orders);
const batchSize = Number(values.batch);
const singles = Number(values.singles);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 10_000_000 }, { worker: false });
const { client } = await stack.newTenant('bench');

const orderBody = (orderRef: string) => monthlyPremiums(orderRef, 12);
const memory = (field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const mb = (value: number) => `${value.toFixed(0)} MB`;

// The baseline: one order a request, 8 at a time.
const singlesStarted = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < singles) {
      const res = await client.request('POST', '/v1/order-management', { body: orderBody(`single-${next++}`) });
      if (res.status !== 202) throw new Error(`a single order answered ${res.status}`);
    }
  }),
);
const singlesPerSecond = singles / ((performance.now() - singlesStarted) / 1000);
const beforeBatches = memory('VmRSS');

const milestones: string[] = [];
const batches = Math.ceil(total / batchSize);
const started = performance.now();
for (let b = 0; b < batches; b++) {
  const orders = Array.from({ length: Math.min(batchSize, total - b * batchSize) }, (_, i) =>
    orderBody(`bulk-${b}-${i}`),
  );
  const res = await client.request('POST', '/v1/order-management/batch', { body: { orders } });
  if (res.status !== 200 || res.body.taken !== orders.length)
    throw new Error(`batch ${b} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
  if ([0, Math.floor(batches / 4), Math.floor(batches / 2), Math.floor((3 * batches) / 4), batches - 1].includes(b))
    milestones.push(`after batch ${b + 1}: RSS ${mb(memory('VmRSS'))}`);
}
const batchSeconds = (performance.now() - started) / 1000;

console.log(
  `batch intake: ${total} orders of 12 instructions in batches of ${batchSize}, no worker; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(`  single POSTs (baseline), ${singles} at concurrency 8  ${singlesPerSecond.toFixed(1)} orders/s`);
console.log(
  `  batches                                    ${(total / batchSeconds).toFixed(1)} orders/s (${batchSeconds.toFixed(0)} s); ratio ${(total / batchSeconds / singlesPerSecond).toFixed(2)}`,
);
console.log(`  this process (API and client): RSS ${mb(beforeBatches)} before the batches; ${milestones.join('; ')}`);
console.log(`  peak RSS ${mb(memory('VmHWM'))}`);
await stack.stop();
