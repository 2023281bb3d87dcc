import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger } from '@temporalio/worker';
import { bundlePaymentWorkflows } from '../../worker/create-worker.js';
import { workflowBundleName } from '../../worker/workflow-bundle.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
/** Where the build goes: each source file's JavaScript at its own path under it. */
export const DIST_DIR = join(projectRoot, 'dist');

/**
 * The environment every production process starts with (npm run cluster, the Dockerfile). glibc
 * gives each thread that allocates at once an arena of its own, up to eight per core; the worker's
 * threads (workflow isolates, the SDK's core) left most of them half empty. Two arenas cut the idle
 * worker's resident memory from about 263 to 246 MB (bench/worker-start.ts) and cost no throughput
 * we could measure.
 */
export const PRODUCTION_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The JavaScript the build makes of a TypeScript entry point (`worker/main.ts` → `dist/worker/main.js`). */
export function builtEntryPoint(source: string): string {
  return join('dist', source.replace(/\.ts$/, '.js'));
}

/**
 * The production build in dist/, from empty: the sources compiled (tsconfig.build.json), and the
 * workflow code bundled twice (plain, and with the tracing interceptors) where the compiled worker
 * looks for it, so a deployed worker neither loads tsx nor runs webpack as it starts.
 */
export async function buildForProduction(): Promise<void> {
  rmSync(DIST_DIR, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  if (compiled.status !== 0) throw new Error(`the TypeScript build failed:\n${compiled.stdout}${compiled.stderr}`);
  const logger = new DefaultLogger('WARN');
  for (const traced of [false, true]) {
    const { code } = await bundlePaymentWorkflows(logger, traced);
    // Where dist/worker/workflow-bundle.js looks for it.
    writeFileSync(join(DIST_DIR, workflowBundleName(traced)), code);
  }
}
