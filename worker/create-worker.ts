import { fileURLToPath } from 'node:url';
import type { MikroORM } from '@mikro-orm/postgresql';
import { NativeConnection, Worker, bundleWorkflowCode, type Logger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { AppConnector } from '../apps/app-connector.js';
import { createActivities } from '../activities/create-activities.js';
import type { MasterKeys } from '../db/secret-box.js';
import { PAYMENTS_TASK_QUEUE } from '../workflows/definitions.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface WorkerDependencies {
  connection: NativeConnection;
  namespace: string;
  orm: MikroORM;
  /** The ORM's pool size: no more activities run at once than there are connections for them. */
  databasePoolSize: number;
  apps: Map<string, AppConnector>;
  /** Open the tenants' app credentials inside payment activities. */
  masterKeys: MasterKeys;
  /** A prebuilt bundle saves the few seconds of bundling when a process creates several workers. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  taskQueue?: string;
}

/** `logger` receives webpack's progress lines (tests pass a quiet one). */
export function bundlePaymentWorkflows(logger?: Logger): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, ...(logger ? { logger } : {}) });
}

export async function createPaymentsWorker(deps: WorkerDependencies): Promise<Worker> {
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue ?? PAYMENTS_TASK_QUEUE,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ orm: deps.orm, apps: deps.apps, masterKeys: deps.masterKeys }),
    maxConcurrentActivityTaskExecutions: deps.databasePoolSize,
  });
}
