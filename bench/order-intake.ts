// Order intake through the whole API (HMAC, rate limit, validation, scheme resolution, the insert,
// the workflow start) against its baseline measured in the same run on the same Temporal server:
// bare `client.workflow.start` of the same workflow with the same input (the orders stored
// beforehand, untimed). Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev
// server of its own), and prints throughput, latency percentiles and the ratio API / bare. The API
// runs as deployed, in its own process from the build (`--api in-process`: in this one, sharing its
// CPU with the benchmark's client).
//   npm run bench -- order-intake --orders 300 --concurrency 8
import { parseArgs } from 'node:util';
import { buildOrder } from '../orders/order-plans.js';
import { resolveInstructions } from '../orders/scheme-resolution.js';
import { loadConfig } from '../config.js';
import { OrderEvent, Tenant } from '../db/entities/index.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { startOrderWorkflow, workflowInputOf } from '../orders/start-order.js';
import { cpuOfProcesses, cpuSpent, describeCpuSpent, machineBusyMs, percentile, processCpuMs } from './measure.js';
import { monthlyPremiums } from './support/order-burst.js';
import { spawnApi } from './support/worker-process.js';
import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { buildForProduction } from '../scripts/build/production-build.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    instructions: { type: 'string', default: '12' },
    // Without a worker: what the API itself costs, nothing else competing for the CPU.
    'no-worker': { type: 'boolean', default: false },
    api: { type: 'string', default: 'process' },
  },
});
if (!['process', 'in-process'].includes(values.api)) throw new Error('--api is process or in-process');
const withWorker = !values['no-worker'];
const orders = Number(values.orders);
const concurrency = Number(values.concurrency);
const instructionsPerOrder = Number(values.instructions);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 }, { worker: withWorker });
const { tenant, client: inProcessClient } = await stack.newTenant('bench');
if (values.api === 'process') await buildForProduction();
const apiProcess =
  values.api === 'process'
    ? await spawnApi(stack, config, 'build', { RATE_LIMIT_PER_MINUTE: '1000000', ORPHAN_ORDER_GRACE_MS: '3600000' })
    : undefined;
const client = apiProcess
  ? new PaymentSchedulerClient({
      baseUrl: apiProcess.url,
      publicKey: tenant.publicKey,
      privateKey: tenant.privateKey,
      tenantId: tenant.tenantId,
    })
  : inProcessClient;

const named = new Map(apiProcess ? [[apiProcess.pid, 'api']] : []);

const orderBody = (orderRef: string) => monthlyPremiums(orderRef, instructionsPerOrder);

interface Run {
  perSecond: number;
  latencies: number[];
  /** Until the worker had run every order's first workflow task (its order.created is recorded). */
  sustainedPerSecond: number;
  /** CPU per order while they were taken: the whole machine's (every process), and the API process's own. */
  cpuMsPerOrder: { machine: number; api: number };
  /** The same by process ("api"; "benchmark" is this process: the client, or the bare starts). */
  cpuByProcess: ReturnType<typeof cpuSpent>;
}

/**
 * Runs `call(0…count-1)` from `concurrency` callers in a closed loop, then waits until the worker
 * has caught up with the orders whose refs start with `prefix`: a start the worker cannot keep up
 * with is not throughput, and its backlog would slow whatever is measured next.
 */
async function measure(count: number, prefix: string, call: (index: number) => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  const apiCpu = () => (apiProcess ? processCpuMs(apiProcess.pid) : Number.NaN);
  const cpuBefore = { machine: machineBusyMs(), api: apiCpu(), processes: cpuOfProcesses(named) };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        const t0 = performance.now();
        await call(index);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const accepted = performance.now();
  const cpuMsPerOrder = {
    machine: (machineBusyMs() - cpuBefore.machine) / count,
    api: (apiCpu() - cpuBefore.api) / count,
  };
  const cpuByProcess = cpuSpent(cpuBefore.processes, cpuOfProcesses(named), count);
  while (
    withWorker &&
    (await stack.orm.em
      .fork()
      .count(OrderEvent, { tenantId: tenant.tenantId, type: 'order.created', orderRef: { $like: `${prefix}-%` } })) <
      count
  ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    perSecond: count / ((accepted - started) / 1000),
    latencies: latencies.sort((a, b) => a - b),
    sustainedPerSecond: withWorker ? count / ((performance.now() - started) / 1000) : Number.NaN,
    cpuMsPerOrder,
    cpuByProcess,
  };
}

/** The same orders as the API would store, stored directly: the baseline times their workflow start alone. */
async function storeOrders(prefix: string, count: number) {
  const em = stack.orm.em.fork();
  const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
  const stored = [];
  for (let i = 0; i < count; i++) {
    const body = orderBody(`${prefix}-${i}`);
    const order = buildOrder(em, tenantRow, body, await resolveInstructions(em, tenant.tenantId, body.instructions));
    // Started just below: marked so, or the worker's reconciler would take them for orphans.
    order.workflowStartedAt = new Date();
    stored.push(order);
  }
  await em.flush();
  return stored.map((order) => workflowInputOf(order, order.instructions.getItems()));
}

const viaApi = async (orderRef: string) => {
  const res = await client.request('POST', '/v1/order-management', { body: orderBody(orderRef) });
  if (res.status !== 202) throw new Error(`${orderRef} answered ${res.status}: ${JSON.stringify(res.body)}`);
};

// Warm-up: connections, caches and the JIT, for both paths.
const warmInputs = await storeOrders('warm-bare', 20);
await measure(20, 'warm-bare', (i) => startOrderWorkflow(stack.temporal, warmInputs[i]));
await measure(20, 'warm-api', (i) => viaApi(`warm-api-${i}`));

const bareInputs = await storeOrders('bare', orders);
const bare = await measure(orders, 'bare', (i) => startOrderWorkflow(stack.temporal, bareInputs[i]));
const api = await measure(orders, 'api', (i) => viaApi(`api-${i}`));

const line = (name: string, r: Run) =>
  `  ${name.padEnd(28)} accepted ${r.perSecond.toFixed(1).padStart(6)}/s (p50 ${percentile(r.latencies, 50).toFixed(1)} ms, p99 ${percentile(r.latencies, 99).toFixed(1)} ms)` +
  (withWorker ? `   sustained ${r.sustainedPerSecond.toFixed(1).padStart(6)} orders/s` : '') +
  `   machine CPU ${r.cpuMsPerOrder.machine.toFixed(1)} ms/order`;
console.log(
  `order intake: ${orders} orders x ${instructionsPerOrder} instructions, concurrency ${concurrency}${withWorker ? '' : ', no worker'}; API ${apiProcess ? 'in its own process (the build)' : 'in the benchmark process'}; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(line('bare client.workflow.start', bare));
console.log(line('POST /v1/order-management', api));
console.log(
  `  ratio API / bare: ${withWorker ? `sustained ${(api.sustainedPerSecond / bare.sustainedPerSecond).toFixed(2)}, ` : ''}accepted ${(api.perSecond / bare.perSecond).toFixed(2)} (target at least 0.8)`,
);
if (apiProcess)
  console.log(
    `  CPU per order taken through the API: ${api.cpuMsPerOrder.machine.toFixed(1)} ms of the machine's (bare start: ${bare.cpuMsPerOrder.machine.toFixed(1)}), of which the API process ${api.cpuMsPerOrder.api.toFixed(1)} ms`,
  );
// On 2 shared cores both paths run the machine near full, so their rates stand as their CPU per order.
console.log('  CPU per order while taken, by process:');
console.log(`    bare client.workflow.start   ${describeCpuSpent(bare.cpuByProcess)}`);
console.log(`    POST /v1/order-management    ${describeCpuSpent(api.cpuByProcess)}`);

await apiProcess?.stop();
await stack.stop();
