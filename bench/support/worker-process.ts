import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config.js';
import { workerNodeFlagsFor } from '../../worker/memory-budget.js';
import { PAYMENTS_TASK_QUEUE } from '../../orders/contract/ids.js';
import type { LocalStack } from '../../scripts/local-stack.js';
import { builtEntryPoint, PRODUCTION_ENV } from '../../scripts/build/production-build.js';
import { freePort } from '../../observability/free-port.js';

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
  const workerEnv = {
    // Benchmarks start their orders themselves; the reconciler would race them for them.
    ORPHAN_ORDER_GRACE_MS: String(3_600_000),
    ...env,
  };
  // The build runs as deployed: with the main thread's heap limit its memory budget sets.
  const flags = runtime === 'build' ? workerNodeFlagsFor(workerEnv) : [];
  const child = spawnService(stack, config, runtime, 'worker/main.ts', workerEnv, flags);
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
  return { child, memory: memoryOf(child), ready, stop: () => stopChild(child) };
}

export interface ApiProcess {
  url: string;
  pid: number;
  memory: (field: 'VmRSS' | 'VmHWM') => number;
  stop(): Promise<void>;
}

/** `npm run api` as deployed, in its own process, against the stack's database and Temporal; resolves once it answers. */
export async function spawnApi(
  stack: LocalStack,
  config: Config,
  runtime: WorkerRuntime,
  env: Record<string, string> = {},
): Promise<ApiProcess> {
  const port = await freePort();
  const child = spawnService(stack, config, runtime, 'app/main.ts', { API_PORT: String(port), ...env });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API (${runtime}) exited with code ${child.exitCode}`);
    if (
      await fetch(`${url}/healthz`).then(
        (res) => res.ok,
        () => false,
      )
    )
      break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, pid: child.pid!, memory: memoryOf(child), stop: () => stopChild(child) };
}

/** One of the project's processes (worker/main.ts, app/main.ts) from source or from the build, configured for the stack. */
function spawnService(
  stack: LocalStack,
  config: Config,
  runtime: WorkerRuntime,
  entry: string,
  env: Record<string, string>,
  flags: string[] = [],
): ChildProcess {
  const args = [...flags, ...(runtime === 'build' ? [builtEntryPoint(entry)] : ['--import', 'tsx', entry])];
  return spawn(process.execPath, args, {
    cwd: projectRoot,
    env: {
      ...(runtime === 'build' ? PRODUCTION_ENV : {}),
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
      ...env,
    },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
}

const memoryOf = (child: ChildProcess) => (field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export const mb = (value: number) => `${value.toFixed(0)} MB`;
