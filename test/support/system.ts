import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import got from 'got';
import { inject } from 'vitest';
import { startApiServer, type RunningApi } from '../../api/server.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import { openDatabase } from '../../db/orm.js';
import { createLogger } from '../../logger.js';
import { createPaymentsWorker } from '../../worker/create-worker.js';
import { OrphanOrderReconciler } from '../../worker/orphan-order-reconciler.js';
import { startSandbox, type RunningSandbox } from './sandbox.js';

export interface TestSystem {
  api: RunningApi;
  orm: MikroORM;
  sandbox: RunningSandbox;
  client: Client;
  reconciler: OrphanOrderReconciler;
  close(): Promise<void>;
}

/**
 * The real stack on loopback: API and worker against the run's Temporal dev server and database,
 * paying through a sandbox provider HTTP server.
 */
export async function startSystem(): Promise<TestSystem> {
  quietTemporalLogs();
  const logger = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'warn');
  const orm = await openDatabase({ url: inject('databaseUrl'), poolSize: inject('databasePoolSize') });
  const sandbox = await startSandbox();
  const address = inject('temporalAddress');
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address });
  const worker: Worker = await createPaymentsWorker({
    connection: nativeConnection,
    namespace: 'default',
    orm,
    apps: createAppRegistry(got, { sandboxUrl: sandbox.url }),
  });
  const running = worker.run();
  const api = await startApiServer({ orm, temporal: client, logger }, 0);
  const reconciler = new OrphanOrderReconciler({ orm, client, logger, graceMs: 0 });
  return {
    api,
    orm,
    sandbox,
    client,
    reconciler,
    async close() {
      await api.close();
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await sandbox.close();
      await orm.close();
    },
  };
}

let runtimeInstalled = false;
/** The worker's INFO lines drown test output; warnings and errors still show. */
export function quietTemporalLogs(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.TEST_LOG_LEVEL?.toUpperCase() as 'WARN') ?? 'WARN') });
}
