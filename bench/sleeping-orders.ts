// Many live orders asleep until future dates: the worker's resident memory as they accumulate
// (target: flat, under 400 MB, however many sleep), against its baseline in the same run: the same
// worker process idle before the first order. Also the time to start them (bare workflow starts of
// orders stored beforehand, then until the worker has run each one's first task). On the cluster's
// Temporal server (its databases on DATABASE_URL's PostgreSQL), what its store grew by per order.
// The worker is the production build (`--worker source`: worker/main.ts through tsx) in its own process, as deployed. Uses DATABASE_URL (or an
// embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- sleeping-orders --orders 10000
import { parseArgs } from 'node:util';
import { buildOrder } from '../orders/order-plans.js';
import { resolveInstructions } from '../orders/scheme-resolution.js';
import type { CreateOrderInput } from '../orders/http/schemas.js';
import { loadConfig } from '../config.js';
import { OrderEvent, Tenant } from '../db/entities/index.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { startOrderWorkflow, workflowInputOf } from '../orders/start-order.js';
import { buildForProduction } from '../scripts/build/production-build.js';
import { describeStoreGrowth, readTemporalStore, temporalStoreAfter } from './support/temporal-store.js';
import { mb, spawnWorker } from './support/worker-process.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '10000' },
    'per-order': { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    // `build`: dist/ (npm run build, run first), as deployed; `source`: worker/main.ts through tsx.
    worker: { type: 'string', default: 'build' },
  },
});
const orders = Number(values.orders);
const concurrency = Number(values.concurrency);
const perOrder = Number(values['per-order']);
if (!Number.isInteger(perOrder) || perOrder < 1)
  throw new Error('--per-order takes a whole number of instructions, 1 or more');

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 }, { worker: false });
const { tenant } = await stack.newTenant('bench');

const built = values.worker === 'build';
if (built) await buildForProduction();
const worker = spawnWorker(stack, config, built ? 'build' : 'source', {
  ...(process.env.WORKER_MAX_CACHED_WORKFLOWS
    ? { WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS }
    : {}),
  ...(process.env.WORKER_MEMORY_MB ? { WORKER_MEMORY_MB: process.env.WORKER_MEMORY_MB } : {}),
});
const memory = worker.memory;
await worker.ready;
await new Promise((resolve) => setTimeout(resolve, 2000));
const idle = memory('VmRSS');

// The orders, stored as the API would store them (one resolution reused: they are all alike).
const body = (orderRef: string): CreateOrderInput => ({
  orderRef,
  // Monthly from January 2031.
  instructions: Array.from({ length: perOrder }, (_, n) => {
    const month = `${2031 + Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, '0')}`;
    return {
      instructionRef: `i-${n + 1}`,
      direction: 'DEBIT' as const,
      amount: '19.99',
      currency: 'EUR',
      country: 'FR',
      openDate: `${month}-01`,
      dueDate: `${month}-05`,
      financialInstrumentId: 'card_ok',
    };
  }),
});
const resolutions = await resolveInstructions(stack.orm.em.fork(), tenant.tenantId, body('x').instructions);
const inputs: ReturnType<typeof workflowInputOf>[] = [];
for (let start = 0; start < orders; start += 500) {
  const em = stack.orm.em.fork();
  const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
  const batch = [];
  for (let i = start; i < Math.min(orders, start + 500); i++) {
    const order = buildOrder(em, tenantRow, body(`sleep-${i}`), resolutions);
    // Started below: marked so, or a reconciler would take them for orphans.
    order.workflowStartedAt = new Date();
    batch.push(order);
  }
  await em.flush();
  inputs.push(...batch.map((order) => workflowInputOf(order, order.instructions.getItems())));
}

const storeBefore = await readTemporalStore(config);
const caughtUp = () => stack.orm.em.fork().count(OrderEvent, { tenantId: tenant.tenantId, type: 'order.created' });
const milestones: string[] = [];
const started = performance.now();
let next = 0;
let done = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < orders) {
      await startOrderWorkflow(stack.temporal, inputs[next++]);
      done++;
      if (done % Math.ceil(orders / 4) === 0) milestones.push(`${done} started: RSS ${mb(memory('VmRSS'))}`);
    }
  }),
);
const startSeconds = (performance.now() - started) / 1000;
while ((await caughtUp()) < orders) await new Promise((resolve) => setTimeout(resolve, 500));
const settledSeconds = (performance.now() - started) / 1000;
await new Promise((resolve) => setTimeout(resolve, 5000));
const storeAfter = storeBefore && (await temporalStoreAfter(config, storeBefore, orders));

console.log(
  `sleeping orders: ${orders} orders of ${perOrder} instructions asleep until 2031; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(`  worker idle before the first order (baseline)  RSS ${mb(idle)}`);
for (const line of milestones) console.log(`  ${line}`);
console.log(
  `  all asleep: RSS ${mb(memory('VmRSS'))}, peak ${mb(memory('VmHWM'))} (target: flat, under 400 MB); peak / idle ${(memory('VmHWM') / idle).toFixed(2)}`,
);
console.log(
  `  started in ${startSeconds.toFixed(1)} s (${(orders / startSeconds).toFixed(0)}/s); every first workflow task run after ${settledSeconds.toFixed(1)} s`,
);

if (storeBefore && storeAfter)
  for (const line of describeStoreGrowth(storeBefore, storeAfter, orders)) console.log(`  ${line}`);

await worker.stop();
await stack.stop();
