// A worker of the minimal workflow in a process of its own, as the application's workers run in
// the cluster (cluster-burst's baseline): TEMPORAL_ADDRESS, SANDBOX_URL, BENCH_TENANT_ID and
// BENCH_TASK_QUEUE from the environment. SIGTERM drains it.
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { minimalPaymentActivities } from './minimal-payment.activities.js';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
Runtime.install({ logger: new DefaultLogger('WARN') });
const connection = await NativeConnection.connect({ address: env('TEMPORAL_ADDRESS') });
const worker = await Worker.create({
  connection,
  taskQueue: env('BENCH_TASK_QUEUE'),
  workflowBundle: await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./minimal-payment.workflow.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  }),
  activities: minimalPaymentActivities(env('SANDBOX_URL'), env('BENCH_TENANT_ID')),
});
process.once('SIGTERM', () => worker.shutdown());
await worker.run();
await connection.close();
