import type { WorkflowBundlePath } from '@temporalio/worker';
import { inject } from 'vitest';

/**
 * The workflow code the run's global setup bundled from the sources once (test/support/global-setup.ts),
 * for every worker and replay of the run: bundling in each test file cost each one about two seconds.
 */
export function testWorkflowBundle(): WorkflowBundlePath {
  return { codePath: inject('workflowBundlePath') };
}
