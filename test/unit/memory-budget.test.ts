import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { workerMemoryPlan, workerNodeFlags } from '../../worker/memory-budget.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** What `mainHeapFollowsPlan` answers in a node process started with these flags (and no NODE_OPTIONS). */
function followsIn(flags: string[], budgetMb: number): boolean {
  const script = `import { mainHeapFollowsPlan, workerMemoryPlan } from './worker/memory-budget.ts';
console.log(mainHeapFollowsPlan(workerMemoryPlan(${budgetMb})));`;
  const { NODE_OPTIONS: _inherited, ...env } = process.env;
  const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: projectRoot,
    env,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim()) as boolean;
}

describe("a worker's memory budget", () => {
  it('shares itself out between the workflow threads, their cache and the main thread', () => {
    expect(workerMemoryPlan(400)).toEqual({ workflowHeapMb: 112, maxCachedWorkflows: 122, mainHeapMb: 128 });
    expect(workerMemoryPlan(1000)).toMatchObject({ workflowHeapMb: 280, mainHeapMb: 320 });
    // An operator's cache size wins; a small budget keeps floors a worker can run in.
    expect(workerMemoryPlan(400, 50).maxCachedWorkflows).toBe(50);
    expect(workerMemoryPlan(100)).toEqual({ workflowHeapMb: 64, maxCachedWorkflows: 58, mainHeapMb: 128 });
  });

  it('limits the main thread only through the flags node starts with, and tells when they do not follow it', () => {
    expect(workerNodeFlags(workerMemoryPlan(400))).toEqual(['--max-old-space-size=128']);
    expect(followsIn(workerNodeFlags(workerMemoryPlan(400)), 400)).toBe(true);
    expect(followsIn(workerNodeFlags(workerMemoryPlan(1000)), 1000)).toBe(true);
    // No limit (V8's default is gigabytes), or one made for another budget, larger or smaller.
    expect(followsIn(['--max-old-space-size=4096'], 400)).toBe(false);
    expect(followsIn(workerNodeFlags(workerMemoryPlan(2000)), 400)).toBe(false);
    expect(followsIn(workerNodeFlags(workerMemoryPlan(400)), 1000)).toBe(false);
  });
});
