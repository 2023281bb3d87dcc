// Many live orders asleep until future dates: the worker's resident memory as they accumulate
// (target: flat, under 400 MB, however many sleep), against its baseline in the same run: the same
// worker process idle before the first order. Also the time to start them (bare workflow starts of
// orders stored beforehand, then until the worker has run each one's first task).
// The worker is `worker/main.ts` in its own process, as deployed. Uses DATABASE_URL (or an
// embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- sleeping-orders --orders 10000
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildOrder } from '../orders/order-plans.js';
import { resolveInstructions } from '../orders/scheme-resolution.js';
import type { CreateOrderInput } from '../orders/http/schemas.js';
import { loadConfig } from '../config.js';
import { OrderEvent, Tenant } from '../db/entities/index.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { startOrderWorkflow, workflowInputOf } from '../orders/start-order.js';
import { PAYMENTS_TASK_QUEUE } from '../orders/contract/ids.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '16' } },
});
const orders = Number(values.orders);
const concurrency = Number(values.concurrency);
const projectRoot = fileURLToPath(new URL('..', import.meta.url));

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 }, { worker: false });
const { tenant } = await stack.newTenant('bench');

const worker = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
  cwd: projectRoot,
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: stack.databaseUrl,
    DATABASE_POOL_SIZE: config.databaseUrl ? '10' : '1',
    MASTER_KEY: stack.masterKeys.current,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    SANDBOX_URL: stack.sandboxUrl,
    PUBLIC_API_URL: stack.api.url,
    ALLOW_LOOPBACK_HTTP: 'true',
    LOG_LEVEL: 'warn',
    // The orders below are started by the benchmark; the reconciler would race it for them.
    ORPHAN_ORDER_GRACE_MS: String(3_600_000),
    ...(process.env.WORKER_MAX_CACHED_WORKFLOWS
      ? { WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS }
      : {}),
  },
  stdio: ['ignore', 'ignore', 'ignore'],
});
const memory = (field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${worker.pid}/status`, 'utf8'))![1]) / 1024;
const mb = (value: number) => `${value.toFixed(0)} MB`;

// Ready when it polls the payments queue.
for (;;) {
  const described = await stack.temporal.connection.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: PAYMENTS_TASK_QUEUE },
  });
  if ((described.pollers ?? []).some((p) => p.identity?.startsWith(`${worker.pid}@`))) break;
  if (worker.exitCode !== null) throw new Error('the worker exited');
  await new Promise((resolve) => setTimeout(resolve, 250));
}
await new Promise((resolve) => setTimeout(resolve, 2000));
const idle = memory('VmRSS');

// The orders, stored as the API would store them (one resolution reused: they are all alike).
const body = (orderRef: string): CreateOrderInput => ({
  orderRef,
  instructions: [1, 2, 3].map((n) => ({
    instructionRef: `i-${n}`,
    direction: 'DEBIT',
    amount: '19.99',
    currency: 'EUR',
    country: 'FR',
    openDate: `2031-0${n}-01`,
    dueDate: `2031-0${n}-05`,
    financialInstrumentId: 'card_ok',
  })),
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
  inputs.push(...batch.map((order) => workflowInputOf(order)));
}

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

console.log(
  `sleeping orders: ${orders} orders of 3 instructions asleep until 2031; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(`  worker idle before the first order (baseline)  RSS ${mb(idle)}`);
for (const line of milestones) console.log(`  ${line}`);
console.log(
  `  all asleep: RSS ${mb(memory('VmRSS'))}, peak ${mb(memory('VmHWM'))} (target: flat, under 400 MB); peak / idle ${(memory('VmHWM') / idle).toFixed(2)}`,
);
console.log(
  `  started in ${startSeconds.toFixed(1)} s (${(orders / startSeconds).toFixed(0)}/s); every first workflow task run after ${settledSeconds.toFixed(1)} s`,
);

worker.kill('SIGTERM');
await new Promise((resolve) => worker.once('exit', resolve));
await stack.stop();
