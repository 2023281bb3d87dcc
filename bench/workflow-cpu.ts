// The workflow code's CPU per workflow task, read by replaying histories in this process: a
// one-payment order's (the shape of due-burst's orders) against the minimal workflow's (due-burst's
// baseline), each run once live on the same server and then replayed `--copies` times. A due burst
// is bound by the worker's workflow tasks, so this is where its ratio comes from. Each history is
// also replayed cut before its first timer fires (its first task alone): the rest is what a cached
// workflow pays when it falls due, the part of a due burst that waits on the workflow thread. And
// the promises each history creates in the workflow's context, and which of the workflow's classes
// or functions made them: the SDK's promise hook records a stack trace (source-mapped) for every one.
//   npm run bench -- workflow-cpu --copies 300
import { readdirSync, readFileSync } from 'node:fs';
import { promiseHooks } from 'node:v8';
import { parseArgs } from 'node:util';
import proto from '@temporalio/proto';
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

/** The history cut before its first timer fires: the workflow's first task alone. */
function firstTaskOf(history: proto.temporal.api.history.v1.IHistory): proto.temporal.api.history.v1.IHistory {
  const events = history.events ?? [];
  const fired = events.findIndex((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_FIRED);
  if (fired < 0) throw new Error('the history has no timer fired');
  return { events: events.slice(0, fired) };
}

/** The classes and functions of the workflow code (ours and the baseline's), by name. */
const workflowCodeNames = new Set(
  [new URL('../orders/workflow/', import.meta.url), new URL('./workflows/', import.meta.url)].flatMap((dir) =>
    readdirSync(dir)
      .filter((file) => file.endsWith('.ts'))
      .flatMap((file) =>
        [
          ...readFileSync(new URL(file, dir), 'utf8').matchAll(/^(?:export )?(?:async )?(?:class|function) (\w+)/gm),
        ].map((match) => match[1]),
      ),
  ),
);
const NONE_OF_OURS = 'none of ours on the stack';
const STACK_DEPTH = 40;

/**
 * Promises created in workflow contexts (replay runs its workflows in this thread) while `work`
 * runs, by the workflow code that made them: the nearest class or function of ours on the stack.
 */
async function promisesCreatedBy(work: () => Promise<unknown>): Promise<Map<string, number>> {
  const byCaller = new Map<string, number>();
  const limit = Error.stackTraceLimit;
  // Deep enough to reach our frame under the SDK's condition, scope and timer frames.
  Error.stackTraceLimit = STACK_DEPTH;
  const stop = promiseHooks.onInit((promise: Promise<unknown>) => {
    if (promise.constructor === Promise) return;
    const frames = (new Error().stack ?? '').split('\n').slice(1);
    const names = frames.map((frame) => /^\s+at (?:async )?(?:new )?([\w$.<>]+) /.exec(frame)?.[1] ?? '');
    const ours = names.map((name) => name.split('.')[0]).find((head) => workflowCodeNames.has(head));
    // A continuation of one of our waits has no frame of ours (the SDK's own work per activation neither).
    const caller = ours ?? (frames.length >= STACK_DEPTH ? `beyond ${STACK_DEPTH} frames` : NONE_OF_OURS);
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + 1);
  });
  try {
    await work();
  } finally {
    stop();
    Error.stackTraceLimit = limit;
  }
  return byCaller;
}

const bundles = { minimal: await bundleMinimalWorkflow(), order: await bundlePaymentWorkflows() };
const kinds = ['minimal', 'order'] as const;
type Kind = (typeof kinds)[number];
const firstTasks = { minimal: firstTaskOf(histories.minimal), order: firstTaskOf(histories.order) };
// Warmed first (the bundle's first load, the JIT), then each measured twice, alternating.
for (const kind of kinds) await replay(bundles[kind], histories[kind], Math.min(copies, 30));
const perHistory = { minimal: [] as number[], order: [] as number[] };
const perFirstTask = { minimal: [] as number[], order: [] as number[] };
for (let run = 0; run < 2; run++)
  for (const kind of kinds) {
    perHistory[kind].push((await replay(bundles[kind], histories[kind], copies)) / copies);
    perFirstTask[kind].push((await replay(bundles[kind], firstTasks[kind], copies)) / copies);
  }
const promisesPerHistory = { minimal: 0, order: 0 };
const promiseCallers = { minimal: '', order: '' };
for (const kind of kinds) {
  const copiesCounted = 10;
  const byCaller = await promisesCreatedBy(() => replay(bundles[kind], histories[kind], copiesCounted));
  promisesPerHistory[kind] = [...byCaller.values()].reduce((a, b) => a + b, 0) / copiesCounted;
  promiseCallers[kind] = [...byCaller.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([caller, n]) => `${caller} ${n / copiesCounted}`)
    .join(', ');
}

const counts = { minimal: countHistory(histories.minimal), order: countHistory(histories.order) };
const best = (runs: number[]) => Math.min(...runs);
const whole = (kind: Kind) => best(perHistory[kind]);
const first = (kind: Kind) => best(perFirstTask[kind]);
const dueTasks = (kind: Kind) => whole(kind) - first(kind);
console.log(`workflow CPU, each history replayed ${copies} times in this process, twice (the lower shown):`);
for (const kind of kinds) {
  const c = counts[kind];
  const label = kind === 'minimal' ? 'minimal workflow (baseline)' : 'payment order, 1 card payment';
  console.log(
    `  ${label.padEnd(30)} ${whole(kind).toFixed(2)} ms a history, ${(whole(kind) / c.workflowTasks).toFixed(2)} ms a workflow task (${c.workflowTasks} tasks, ${c.events} events, activities ${describeActivities(c.activities, 1)}; runs ${perHistory[kind].map((ms) => ms.toFixed(2)).join(', ')} ms)`,
  );
  console.log(
    `  ${''.padEnd(30)} first task ${first(kind).toFixed(2)} ms, the tasks after it (due) ${dueTasks(kind).toFixed(2)} ms; ${promisesPerHistory[kind]} promises created a history`,
  );
  console.log(`  ${''.padEnd(30)} promises by their maker: ${promiseCallers[kind]}`);
}
const ratio = (of: (kind: Kind) => number) => (of('order') / of('minimal')).toFixed(2);
console.log(
  `  ratio order / minimal: ${ratio(whole)} a history, ${(whole('order') / counts.order.workflowTasks / (whole('minimal') / counts.minimal.workflowTasks)).toFixed(2)} a workflow task, ${ratio(first)} the first task, ${ratio(dueTasks)} the due tasks; promises ${ratio((kind) => promisesPerHistory[kind])}`,
);
