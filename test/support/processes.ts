import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import type { TestSystem } from './system.js';
import { lane } from './lanes.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The processes started and not yet exited: a test that fails midway must not leave one behind. */
const started = new Set<ChildProcess>();

/**
 * One of the project's commands (`worker/main.ts` for `npm run worker`, `app/main.ts` for `npm run
 * api`) as a deployment runs it: its own process, configured by its environment, on the test
 * system's database, Temporal server, master key and sandbox. Its stderr is shown only if it dies
 * on its own.
 */
export function startProcess(system: TestSystem, script: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: lane().databaseUrl,
      DATABASE_POOL_SIZE: String(inject('databasePoolSize') === 1 ? 4 : 10),
      MASTER_KEY: system.masterKey,
      TEMPORAL_ADDRESS: lane().temporalAddress,
      SANDBOX_URL: system.sandbox.url,
      PUBLIC_API_URL: system.api.url,
      ALLOW_LOOPBACK_HTTP: 'true',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  child.once('exit', (code, signal) => {
    started.delete(child);
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM')
      console.error(`${script} exited with ${code}: ${stderr}`);
  });
  return child;
}

/**
 * Stops every process started here that is still running (SIGTERM, then SIGKILL after 10 s). For a
 * file's afterAll: a worker a failed test left running would go on polling the lane's Temporal server
 * with this file's master key, taking the next files' tasks and failing them (app_credentials_unreadable).
 */
export async function stopStartedProcesses(): Promise<void> {
  await Promise.all(
    [...started].map(async (child) => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    }),
  );
}
