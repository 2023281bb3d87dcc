// How an order's costs grow with its size: orders of 1, 12, 100 and 500 card payments (each size
// `--orders` times), all due a few seconds after they are taken. For each size: the API's time to
// accept one, its workflow's first task (WorkflowTaskStarted → Completed, from the history), and,
// once every payment has settled, the history's events and bytes per settled instruction. Linear
// growth shows as flat per-instruction figures; the 1-instruction order is the baseline.
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- cost-growth --orders 3
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { PaymentInstruction } from '../db/entities/index.js';
import { orderWorkflowId } from '../orders/contract/ids.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { median } from './measure.js';
import { countHistory, type HistoryCounts } from './support/history-counts.js';
import { cardPaymentsDue } from './support/order-burst.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '3' }, sizes: { type: 'string', default: '1,12,100,500' } },
});
const perSize = Number(values.orders);
const sizes = values.sizes.split(',').map(Number);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant, client } = await stack.newTenant('bench');

interface SizeResult {
  size: number;
  acceptMs: number;
  firstTaskMs: number;
  eventsPerInstruction: number;
  bytesPerInstruction: number;
  activitiesPerInstruction: number;
  workflowTasksPerInstruction: number;
}

async function measure(size: number): Promise<SizeResult> {
  const due = new Date(Date.now() + 5000 + size * 20);
  const refs: string[] = [];
  const accepts: number[] = [];
  for (let o = 0; o < perSize; o++) {
    const orderRef = `growth-${size}-${Date.now().toString(36)}-${o}`;
    refs.push(orderRef);
    const instructions = cardPaymentsDue(size, due);
    const started = performance.now();
    const res = await client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
    accepts.push(performance.now() - started);
    if (res.status !== 202) throw new Error(`${orderRef} answered ${res.status}`);
  }
  for (;;) {
    const settled = await stack.orm.em
      .fork()
      .count(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef: { $in: refs } }, status: 'SETTLED' });
    if (settled === size * perSize) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const counts: HistoryCounts[] = [];
  for (const orderRef of refs) {
    // Its history as it stands with every payment settled (the order itself waits out its reversal window).
    const history = await stack.temporal.workflow.getHandle(orderWorkflowId(tenant.tenantId, orderRef)).fetchHistory();
    counts.push(countHistory(history));
  }
  const perInstruction = (of: (c: HistoryCounts) => number) => median(counts.map((c) => of(c) / size));
  const activityCount = (c: HistoryCounts) => Object.values(c.activities).reduce((a, b) => a + b, 0);
  return {
    size,
    acceptMs: median(accepts),
    firstTaskMs: median(counts.map((c) => c.firstTaskMs)),
    eventsPerInstruction: perInstruction((c) => c.events),
    bytesPerInstruction: perInstruction((c) => c.bytes),
    activitiesPerInstruction: perInstruction(activityCount),
    workflowTasksPerInstruction: perInstruction((c) => c.workflowTasks),
  };
}

await measure(1); // warm-up: connections, caches, the JIT
const results: SizeResult[] = [];
for (const size of sizes) results.push(await measure(size));

console.log(
  `cost growth: ${perSize} orders of each size, card payments due together; medians; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(
  '  instructions | API accept ms (per instr.) | first workflow task ms (per instr.) | history events / instr. | history bytes / instr. | activities / instr. | workflow tasks / instr.',
);
for (const r of results) {
  console.log(
    `  ${String(r.size).padStart(12)} | ${r.acceptMs.toFixed(1).padStart(9)} (${(r.acceptMs / r.size).toFixed(2).padStart(6)}) | ${r.firstTaskMs.toFixed(0).padStart(9)} (${(r.firstTaskMs / r.size).toFixed(2).padStart(6)}) | ${r.eventsPerInstruction.toFixed(1).padStart(8)} | ${r.bytesPerInstruction.toFixed(0).padStart(8)} | ${r.activitiesPerInstruction.toFixed(2).padStart(6)} | ${r.workflowTasksPerInstruction.toFixed(2).padStart(6)}`,
  );
}
const base = results[0];
const last = results.at(-1)!;
console.log(
  `  ${last.size} vs ${base.size} instruction(s): accept ${(last.acceptMs / base.acceptMs).toFixed(1)}x, first task ${(last.firstTaskMs / Math.max(1, base.firstTaskMs)).toFixed(1)}x, for ${last.size / base.size}x the instructions; events per instruction ${(last.eventsPerInstruction / base.eventsPerInstruction).toFixed(2)}x, bytes per instruction ${(last.bytesPerInstruction / base.bytesPerInstruction).toFixed(2)}x (linear: per-instruction figures flat or falling)`,
);
await stack.stop();
