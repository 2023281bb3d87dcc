import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { loadConfig } from '../config.js';

/*
 * Costs measured with `npm run bench -- sleeping-orders` on the production build (README,
 * "Performance"): what a workflow thread's heap holds with no order in it, and what each cached
 * order workflow (3 instructions) adds to it. Larger orders hold more: the cache is sized for the
 * budget, and the heap limit below bounds what it may grow to.
 */
const WORKFLOW_THREAD_BASE_MB = 20;
const CACHED_ORDER_MB = 0.3;
/** The part of a workflow thread's heap limit its cached orders may fill; the rest is room for garbage between collections. */
const CACHE_SHARE = 0.4;
/**
 * The part of the budget a workflow thread's heap may take (the process also holds the main thread,
 * the SDK's core and buffers: about 250 MB idle). At 0.32 the 400 MB default peaked at 413 MB with
 * 10,000 sleeping orders; at 0.28 (a 112 MB heap, 122 cached orders) at 385 MB.
 */
const WORKFLOW_HEAP_SHARE = 0.28;
/**
 * The part of the budget the main thread's heap may take (activities, and the SDK's traffic with its
 * core and the workflow threads: about 60–75 MB live with 10,000 orders falling asleep). Unlimited, V8
 * let it grow to 210 MB of mostly garbage while a worker on the Temporal server worked through a
 * backlog of first tasks, and those orders peaked at 531 MB; limited to 128 MB (0.32 of 400), at 383
 * MB, as fast; two such workers settled 10,000 payments due at once peaking at 434 MB each. Reaching
 * the limit ends the process (Temporal then gives its tasks to another worker): what one holds at
 * once, such as a reconciliation's ledger, needs a larger budget. Never below MIN_MAIN_HEAP_MB.
 */
const MAIN_HEAP_SHARE = 0.32;
const MIN_MAIN_HEAP_MB = 128;

export interface WorkerMemoryPlan {
  /** The old-generation limit of each workflow thread's heap, in MB. */
  workflowHeapMb: number;
  /** Order workflows kept in memory between their tasks. */
  maxCachedWorkflows: number;
  /** The old-generation limit of the main thread's heap, in MB: set as the process starts (`workerNodeFlags`). */
  mainHeapMb: number;
}

/**
 * What a worker holding at most `budgetMb` of memory may give its workflow threads: a heap limit
 * (so that garbage is collected before it grows past the budget, where V8 would otherwise let a
 * thread's heap grow towards gigabytes) and as many cached orders as fit in part of it.
 * `maxCachedWorkflows` set by an operator wins over the budget's.
 */
export function workerMemoryPlan(budgetMb: number, maxCachedWorkflows?: number): WorkerMemoryPlan {
  const workflowHeapMb = Math.max(64, Math.round(budgetMb * WORKFLOW_HEAP_SHARE));
  const fits = Math.floor(((workflowHeapMb - WORKFLOW_THREAD_BASE_MB) * CACHE_SHARE) / CACHED_ORDER_MB);
  return {
    workflowHeapMb,
    maxCachedWorkflows: maxCachedWorkflows ?? Math.max(20, fits),
    mainHeapMb: Math.max(MIN_MAIN_HEAP_MB, Math.round(budgetMb * MAIN_HEAP_SHARE)),
  };
}

/**
 * The flags `node` must start a worker process with to keep to the plan: a thread's heap limit is
 * fixed when the thread starts, so the main thread's cannot be set from inside the process.
 */
export function workerNodeFlags(plan: WorkerMemoryPlan): string[] {
  return [`--max-old-space-size=${plan.mainHeapMb}`];
}

/** The flags for a worker process started with this environment (its WORKER_MEMORY_MB, or the default). */
export function workerNodeFlagsFor(env: NodeJS.ProcessEnv): string[] {
  return workerNodeFlags(workerMemoryPlan(loadConfig(env).workerMemoryMb));
}

/** Whether this process's main thread was started with the plan's heap limit (V8 adds its young generation's, 48 MB, to it). */
export function mainHeapFollowsPlan(plan: WorkerMemoryPlan): boolean {
  const limitMb = getHeapStatistics().heap_size_limit / (1024 * 1024);
  return limitMb >= plan.mainHeapMb && limitMb <= plan.mainHeapMb + 64;
}

/**
 * Applies the plan's heap limit to JavaScript threads started from now on (the SDK's workflow
 * threads, which take no limit of their own); this process's main thread keeps its own.
 */
export function limitWorkflowThreadHeaps(plan: WorkerMemoryPlan): void {
  setFlagsFromString(`--max-old-space-size=${plan.workflowHeapMb}`);
}
