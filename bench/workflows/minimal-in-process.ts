// The minimal workflow's worker in the benchmark's own process, beside the application's, paying
// the same sandbox provider (the baseline of due-burst and workflow-cpu).
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { minimalPaymentActivities } from './minimal-payment.activities.js';

export const MINIMAL_TASK_QUEUE = 'bench-minimal';

/** The minimal workflow's code, bundled as a worker runs it. */
export function bundleMinimalWorkflow(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./minimal-payment.workflow.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
}

export interface MinimalWorker {
  stop(): Promise<void>;
}

/** A worker of the minimal workflow on MINIMAL_TASK_QUEUE, until `stop`. */
export async function startMinimalWorker(
  temporalAddress: string,
  sandboxUrl: string,
  tenantId: string,
): Promise<MinimalWorker> {
  const connection = await NativeConnection.connect({ address: temporalAddress });
  const worker = await Worker.create({
    connection,
    taskQueue: MINIMAL_TASK_QUEUE,
    workflowBundle: await bundleMinimalWorkflow(),
    activities: minimalPaymentActivities(sandboxUrl, tenantId),
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
