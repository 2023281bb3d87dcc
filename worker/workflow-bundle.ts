import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkflowBundlePath } from '@temporalio/worker';

/** The pre-bundled workflow code's file name (`-traced`: with the tracing interceptors). */
export function workflowBundleName(traced: boolean): string {
  return `workflow-bundle${traced ? '-traced' : ''}.js`;
}

/**
 * The build's workflow bundle (`npm run build` writes it to `dist/`, the parent of the compiled
 * `worker/`), or undefined. From the TypeScript sources the path names a file no build writes
 * (the checkout's root), so tsx and the tests always bundle the code they run.
 */
export function prebuiltWorkflowBundle(traced: boolean): WorkflowBundlePath | undefined {
  const codePath = fileURLToPath(new URL(`../${workflowBundleName(traced)}`, import.meta.url));
  return existsSync(codePath) ? { codePath } : undefined;
}
