// The workflow code's CPU per workflow task, read by replaying histories in this process: a
// one-payment order's (the shape of due-burst's orders) against the minimal workflow's (due-burst's
// baseline), each run once live on the same server and then replayed `--copies` times. A due burst
// is bound by the worker's workflow tasks, so this is where its ratio comes from.
//   npm run bench -- workflow-cpu --copies 300
import { parseArgs } from 'node:util';
import type proto from '@temporalio/proto';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { loadConfig } from '../config.js';
import { orderWorkflowId } from '../orders/contract/ids.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { bundlePaymentWorkflows } from '../worker/create-worker.js';
import { countHistory, describeActivities, historyOnceAtRest } from './support/history-counts.js';
import { orderBurst } from './support/order-burst.js';
import { bundleMinimalWorkflow, MINIMAL_TASK_QUEUE, startMinimalWorker } from './workflows/minimal-in-process.js';
import { minimalPaymentWorkflow } from './workflows/minimal-payment.workflow.js';

const { values } = parseArgs({ options: { copies: { type: 'string', default: '300' } } });
const copies = Number(values.copies);

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant, client } = await stack.newTenant('bench');
const minimalWorker = await startMinimalWorker(stack.temporalAddress, stack.sandboxUrl, tenant.tenantId);

const due = Date.now() + 3_000;
const minimal = await stack.temporal.workflow.start(minimalPaymentWorkflow, {
  taskQueue: MINIMAL_TASK_QUEUE,
  workflowId: `minimal-cpu-${due}`,
  args: [due, `cpu-${due}`],
});
await minimal.result();
const order = await orderBurst(client, stack.orm, tenant.tenantId, { orders: 1, perOrder: 1, leadMs: 3_000 });
const histories = {
  minimal: await historyOnceAtRest(minimal),
  order: await historyOnceAtRest(
    stack.temporal.workflow.getHandle(orderWorkflowId(tenant.tenantId, order.orderRefs[0])),
  ),
};
await minimalWorker.stop();
await stack.stop();

/** Replays `count` copies of one history; the process's CPU (every thread), in ms. */
async function replay(workflowBundle: WorkflowBundle, history: proto.temporal.api.history.v1.IHistory, count: number) {
  const cpu = process.cpuUsage();
  const copiesOf = Array.from({ length: count }, (_, n) => ({ workflowId: `replay-${n}`, history }));
  for await (const result of Worker.runReplayHistories({ workflowBundle }, copiesOf))
    if (result.error) throw result.error;
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000;
}

const bundles = { minimal: await bundleMinimalWorkflow(), order: await bundlePaymentWorkflows() };
const kinds = ['minimal', 'order'] as const;
// Warmed first (the bundle's first load, the JIT), then each measured twice, alternating.
for (const kind of kinds) await replay(bundles[kind], histories[kind], Math.min(copies, 30));
const perHistory = { minimal: [] as number[], order: [] as number[] };
for (let run = 0; run < 2; run++)
  for (const kind of kinds) {
    const cpuMs = await replay(bundles[kind], histories[kind], copies);
    perHistory[kind].push(cpuMs / copies);
  }

const counts = { minimal: countHistory(histories.minimal), order: countHistory(histories.order) };
const best = (kind: (typeof kinds)[number]) => Math.min(...perHistory[kind]);
console.log(`workflow CPU, each history replayed ${copies} times in this process, twice (the lower shown):`);
for (const kind of kinds) {
  const c = counts[kind];
  const label = kind === 'minimal' ? 'minimal workflow (baseline)' : 'payment order, 1 card payment';
  console.log(
    `  ${label.padEnd(30)} ${best(kind).toFixed(2)} ms a history, ${(best(kind) / c.workflowTasks).toFixed(2)} ms a workflow task (${c.workflowTasks} tasks, ${c.events} events, activities ${describeActivities(c.activities, 1)}; runs ${perHistory[kind].map((ms) => ms.toFixed(2)).join(', ')} ms)`,
  );
}
console.log(
  `  ratio order / minimal: ${(best('order') / best('minimal')).toFixed(2)} a history, ${(best('order') / counts.order.workflowTasks / (best('minimal') / counts.minimal.workflowTasks)).toFixed(2)} a workflow task`,
);
