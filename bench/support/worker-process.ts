import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config.js';
import { PAYMENTS_TASK_QUEUE } from '../../orders/contract/ids.js';
import type { LocalStack } from '../../scripts/local-stack.js';
import { builtEntryPoint } from '../../scripts/build/production-build.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** `source`: worker/main.ts through tsx, bundling the workflow code as it starts; `build`: dist/ (npm run build). */
export type WorkerRuntime = 'source' | 'build';

export interface WorkerProcess {
  child: ChildProcess;
  /** Resident memory now (VmRSS) or at its peak (VmHWM), in MB. */
  memory: (field: 'VmRSS' | 'VmHWM') => number;
  /** Resolves once it polls the payments task queue; the milliseconds from spawning it. */
  ready: Promise<number>;
  stop(): Promise<void>;
}

/** `npm run worker` as deployed, in its own process, against the stack's database and Temporal. */
export function spawnWorker(
  stack: LocalStack,
  config: Config,
  runtime: WorkerRuntime,
  env: Record<string, string> = {},
): WorkerProcess {
  const spawned = performance.now();
  const args = runtime === 'build' ? [builtEntryPoint('worker/main.ts')] : ['--import', 'tsx', 'worker/main.ts'];
  const child = spawn(process.execPath, args, {
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
      // Benchmarks start their orders themselves; the reconciler would race them for them.
      ORPHAN_ORDER_GRACE_MS: String(3_600_000),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const memory = (field: 'VmRSS' | 'VmHWM') =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
  const ready = (async () => {
    for (;;) {
      const described = await stack.temporal.connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: PAYMENTS_TASK_QUEUE },
      });
      if ((described.pollers ?? []).some((p) => p.identity?.startsWith(`${child.pid}@`))) {
        return performance.now() - spawned;
      }
      if (child.exitCode !== null) throw new Error(`the worker (${runtime}) exited with code ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return { child, memory, ready, stop };
}

export const mb = (value: number) => `${value.toFixed(0)} MB`;
