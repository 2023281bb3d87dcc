import { setFlagsFromString } from 'node:v8';

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

export interface WorkerMemoryPlan {
  /** The old-generation limit of each workflow thread's heap, in MB. */
  workflowHeapMb: number;
  /** Order workflows kept in memory between their tasks. */
  maxCachedWorkflows: number;
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
  return { workflowHeapMb, maxCachedWorkflows: maxCachedWorkflows ?? Math.max(20, fits) };
}

/**
 * Applies the plan's heap limit to JavaScript threads started from now on (the SDK's workflow
 * threads, which take no limit of their own); this process's main thread keeps its own.
 */
export function limitWorkflowThreadHeaps(plan: WorkerMemoryPlan): void {
  setFlagsFromString(`--max-old-space-size=${plan.workflowHeapMb}`);
}
