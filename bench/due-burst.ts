// A burst of instructions falling due at one instant: the lag from the due date to SETTLED (p50,
// p99, max), against its baseline measured in the same run on the same Temporal server: as many
// minimal workflows (sleep to the same kind of instant, one payment call to the same sandbox
// provider, complete). Both lags end where the workflow takes the provider's answer (an order's
// `settledAt`, the minimal's `takenAt`); the minimal's lag to the provider's answer itself, which
// this benchmark compared with until 2026-12-02, is printed beside it. Uses DATABASE_URL (or an
// embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own). Bursts minutes apart differ
// widely on a noisy machine: `--runs` alternates that many of each and prints the median ratio.
//   npm run bench -- due-burst --orders 30 --per-order 10 --runs 4
import { parseArgs } from 'node:util';
import proto from '@temporalio/proto';
import { loadConfig } from '../config.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { orderWorkflowId } from '../orders/contract/ids.js';
import { cpuOfProcesses, cpuSpent, describeCpuSpent, median, percentile, type ProcessCpu } from './measure.js';
import {
  countHistory,
  describeActivities,
  historyOnceAtRest,
  LAG_PHASES,
  lagPhases,
  type HistoryCounts,
  type LagPhases,
} from './support/history-counts.js';
import { orderBurst as burstOfOrders } from './support/order-burst.js';
import { describePoolUse, watchPool, type PoolUse } from './support/pool-use.js';
import { minimalPaymentWorkflow } from './workflows/minimal-payment.workflow.js';
import { MINIMAL_TASK_QUEUE, startMinimalWorker } from './workflows/minimal-in-process.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '30' },
    'per-order': { type: 'string', default: '10' },
    lead: { type: 'string', default: '20' },
    runs: { type: 'string', default: '2' },
  },
});
const orders = Number(values.orders);
const perOrder = Number(values['per-order']);
const total = orders * perOrder;
/** Seconds between submitting the burst and its due instant: every workflow is started and asleep by then. */
const leadMs = Number(values.lead) * 1000;
const runCount = Math.max(1, Number(values.runs));

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant, client } = await stack.newTenant('bench');

const minimalWorker = await startMinimalWorker(stack.temporalAddress, stack.sandboxUrl, tenant.tenantId);

async function minimalBurst(
  size = total,
): Promise<{ lags: number[]; answeredLags: number[]; workflowIds: string[]; dueMs: number }> {
  const due = Date.now() + leadMs;
  const handles = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      stack.temporal.workflow.start(minimalPaymentWorkflow, {
        taskQueue: MINIMAL_TASK_QUEUE,
        workflowId: `minimal-${due}-${i}`,
        args: [due, `m-${due}-${i}`],
      }),
    ),
  );
  const settled = await Promise.all(handles.map((h) => h.result()));
  const lagsOf = (at: number[]) => at.map((t) => t - due).sort((a, b) => a - b);
  return {
    lags: lagsOf(settled.map((s) => s.takenAt)),
    answeredLags: lagsOf(settled.map((s) => s.answeredAt)),
    workflowIds: handles.map((h) => h.workflowId),
    dueMs: due,
  };
}

const orderBurst = (orderCount = orders) =>
  burstOfOrders(client, stack.orm, tenant.tenantId, { orders: orderCount, perOrder, leadMs });

const summary = (lags: number[]) =>
  `p50 ${(percentile(lags, 50) / 1000).toFixed(2)} s  p99 ${(percentile(lags, 99) / 1000).toFixed(2)} s  max ${(lags.at(-1)! / 1000).toFixed(2)} s`;

/**
 * The CPU every process on the machine spends from `dueMs` until `burst` ends, per instruction: where a
 * burst's cost lands (the Temporal server, PostgreSQL, this process's workers), which on 2 shared
 * cores is what sets its lag.
 */
async function cpuFromDue<T>(dueMs: number, burst: Promise<T>) {
  let atDue: ProcessCpu | undefined;
  let pool: ReturnType<typeof watchPool> | undefined;
  const reading = setTimeout(() => {
    atDue = cpuOfProcesses();
    pool = watchPool(stack.orm);
  }, dueMs - Date.now());
  const result = await burst;
  clearTimeout(reading);
  if (!atDue || !pool) throw new Error('the burst settled before it fell due');
  return { result, cpu: cpuSpent(atDue, cpuOfProcesses(), total), pool: pool.stop() };
}

// Both paths warmed first (connections, caches, the JIT), then each measured twice, alternating, so
// that neither gets the cold run nor always the second one.
await minimalBurst(Math.max(1, Math.round(total / 10)));
await orderBurst(Math.max(1, Math.round(orders / 10)));
type Cpu = ReturnType<typeof cpuSpent>;
const runs: {
  minimal: number[];
  minimalAnswered: number[];
  ours: number[];
  cpu: { minimal: Cpu; ours: Cpu };
  pool: PoolUse;
}[] = [];
let last:
  { minimal: { workflowIds: string[]; dueMs: number }; ours: { workflowIds: string[]; dueMs: number } } | undefined;
for (let run = 0; run < runCount; run++) {
  const { result: minimal, cpu: minimalCpu } = await cpuFromDue(Date.now() + leadMs, minimalBurst());
  const { result: ours, cpu: ourCpu, pool } = await cpuFromDue(Date.now() + leadMs, orderBurst());
  runs.push({
    minimal: minimal.lags,
    minimalAnswered: minimal.answeredLags,
    ours: ours.lags,
    cpu: { minimal: minimalCpu, ours: ourCpu },
    pool,
  });
  const workflowIds = ours.orderRefs.map((ref) => orderWorkflowId(tenant.tenantId, ref));
  last = { minimal, ours: { workflowIds, dueMs: ours.dueMs } };
}

const SAMPLE = 20;

/** Histories fetched once at rest, by workflow id: the phases below read them again instead of fetching them. */
const fetched = new Map<string, proto.temporal.api.history.v1.IHistory>();

/** A sample's histories once nothing is under way in them (the last projection answered), counted. */
async function countSample(workflowIds: string[]): Promise<HistoryCounts[]> {
  return Promise.all(
    workflowIds.slice(0, SAMPLE).map(async (workflowId) => {
      const history = await historyOnceAtRest(stack.temporal.workflow.getHandle(workflowId));
      fetched.set(workflowId, history);
      return countHistory(history);
    }),
  );
}
const perInstruction = async (workflowIds: string[], instructionsEach: number) => {
  const counts = await countSample(workflowIds);
  const per = counts.length * instructionsEach;
  const activities: Record<string, number> = {};
  for (const c of counts)
    for (const [type, n] of Object.entries(c.activities)) activities[type] = (activities[type] ?? 0) + n;
  const sum = (of: (c: HistoryCounts) => number) => counts.reduce((a, c) => a + of(c), 0) / per;
  return `activities ${describeActivities(activities, per)}, workflow tasks ${sum((c) => c.workflowTasks).toFixed(2)}, history events ${sum((c) => c.events).toFixed(1)}`;
};
const countsOfOrders = await perInstruction(last!.ours.workflowIds, perOrder);
const countsOfMinimal = await perInstruction(last!.minimal.workflowIds, 1);

/** Each payment's phases (the first payment of each workflow of the last run), read from its history. */
async function phasesOf({ workflowIds, dueMs }: { workflowIds: string[]; dueMs: number }, activityType: string) {
  return (
    await Promise.all(
      workflowIds.map(async (id) =>
        lagPhases(fetched.get(id) ?? (await stack.temporal.workflow.getHandle(id).fetchHistory()), dueMs, activityType),
      ),
    )
  ).filter((p): p is LagPhases => p !== undefined);
}
const NO_SAMPLE = 'no sample (no call made in a task the due timer started)';
const seconds = (values: number[], p: number) => (percentile(values, p) / 1000).toFixed(2);
const ascending = (values: number[]) => [...values].sort((a, b) => a - b);
/** p50/p99 of each phase, in seconds. */
function describePhases(phases: LagPhases[]): string {
  if (phases.length === 0) return NO_SAMPLE;
  return LAG_PHASES.map((phase) => {
    const values = ascending(phases.map((p) => p[phase]));
    return `${phase} ${seconds(values, 50)}/${seconds(values, 99)}`;
  }).join('  ');
}
/** Due → the provider's answer recorded by the server (the call's completion): where the money moved, the same point for both. */
const toAnswer = (phases: LagPhases[]) =>
  ascending(phases.map((p) => p.timer + p.taskQueued + p.taskRun + p.callQueued + p.callRun));
const phasesOfMinimal = await phasesOf(last!.minimal, 'charge');
const phasesOfOrders = await phasesOf(last!.ours, 'executePayment');
console.log(
  `due burst: ${total} instructions (${orders} orders x ${perOrder}) due at one instant; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(
  "  lag: due -> SETTLED, i.e. the workflow took the provider's answer (an order's settledAt, the minimal's takenAt)",
);
const ratio99 = (ours: number[], baseline: number[]) => percentile(ours, 99) / percentile(baseline, 99);
runs.forEach(({ minimal, minimalAnswered, ours, cpu, pool }, run) => {
  console.log(`  run ${run + 1}: minimal workflow (baseline)   lag ${summary(minimal)}`);
  console.log(`  run ${run + 1}: payment orders                lag ${summary(ours)}`);
  console.log(
    `  run ${run + 1}: ratio p99 orders / minimal: ${ratio99(ours, minimal).toFixed(2)} (target at most 1.5, stretch 1.3)`,
  );
  console.log(
    `  run ${run + 1}: the minimal's lag to its provider's answer instead (this benchmark's baseline until 2026-12-02): ${summary(minimalAnswered)}; ratio p99 ${ratio99(ours, minimalAnswered).toFixed(2)}`,
  );
  console.log(`  run ${run + 1}: the machine's CPU per instruction, due to the last settled, by process:`);
  console.log(`    minimal workflow (baseline)  ${describeCpuSpent(cpu.minimal)}`);
  console.log(
    `    payment orders               ${describeCpuSpent(cpu.ours)}: ${(cpu.ours.total / cpu.minimal.total).toFixed(2)}x`,
  );
  // The minimal workflow makes no use of it; the orders' projections do, and this benchmark's look for settlements.
  console.log(`  run ${run + 1}: the orders' database pool, due to the last settled: ${describePoolUse(pool, total)}`);
});
const ratios = runs.map(({ minimal, ours }) => ratio99(ours, minimal));
console.log(
  `  median ratio p99 orders / minimal over ${ratios.length} run(s): ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(', ')})`,
);
console.log(`  per settled instruction, whole history (${SAMPLE} workflows of the last run, once at rest):`);
console.log(`    minimal workflow (baseline)  ${countsOfMinimal}`);
console.log(`    payment orders               ${countsOfOrders}`);
console.log('  where the lag went, last run, s at p50/p99 of each phase:');
console.log(`    minimal workflow (baseline)  ${describePhases(phasesOfMinimal)}`);
console.log(`    payment orders               ${describePhases(phasesOfOrders)}`);
if (phasesOfMinimal.length > 0 && phasesOfOrders.length > 0) {
  const [minimal, ours] = [toAnswer(phasesOfMinimal), toAnswer(phasesOfOrders)];
  console.log(
    `  due -> the provider's answer recorded by the server, last run (the first call of each workflow, in a task its due timer started: ${minimal.length} minimal, ${ours.length} orders): minimal p50 ${seconds(minimal, 50)} s p99 ${seconds(minimal, 99)} s; orders p50 ${seconds(ours, 50)} s p99 ${seconds(ours, 99)} s; ratio p99 ${ratio99(ours, minimal).toFixed(2)}`,
  );
}

await minimalWorker.stop();
await stack.stop();
