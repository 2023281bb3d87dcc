import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import got from 'got';
import type { Logger } from 'pino';
import { createAppRegistry, type AppRegistryConfig } from '../apps/app-registry.js';
import type { MasterKeys } from '../db/secret-box.js';
import { registerSearchAttributes } from '../temporal/search-attribute-registration.js';
import { createPaymentsWorker } from './create-worker.js';
import { Housekeeping } from './housekeeping.js';
import { OrphanOrderReconciler } from './orphan-order-reconciler.js';

export interface WorkerProcessOptions {
  orm: MikroORM;
  databasePoolSize: number;
  logger: Logger;
  temporalAddress: string;
  namespace: string;
  apps: AppRegistryConfig;
  masterKeys: MasterKeys;
  orphanOrderGraceMs: number;
}

export interface RunningWorker {
  /** Resolves when the worker has stopped, after stop() or a fatal error. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The worker process's whole job: run order workflows and their activities, restart orphaned
 * orders, and clear expired rows.
 */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<RunningWorker> {
  const clientConnection = await Connection.connect({ address: options.temporalAddress });
  await registerSearchAttributes(clientConnection, options.namespace);
  const client = new Client({ connection: clientConnection, namespace: options.namespace });
  const connection = await NativeConnection.connect({ address: options.temporalAddress });
  const worker = await createPaymentsWorker({
    connection,
    namespace: options.namespace,
    orm: options.orm,
    databasePoolSize: options.databasePoolSize,
    apps: createAppRegistry(got, options.apps),
    masterKeys: options.masterKeys,
  });
  const reconciler = new OrphanOrderReconciler({
    orm: options.orm,
    client,
    logger: options.logger,
    graceMs: options.orphanOrderGraceMs,
  });
  reconciler.start();
  const housekeeping = new Housekeeping(options.orm, options.logger);
  housekeeping.start();
  const done = worker.run().finally(async () => {
    await reconciler.stop();
    await housekeeping.stop();
    await connection.close();
    await clientConnection.close();
  });
  return {
    done,
    async stop() {
      // shutdown() lets activities in flight finish; the server re-dispatches anything left over.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
