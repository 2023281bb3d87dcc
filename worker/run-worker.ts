import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { clientTracing, type Tracing } from '../observability/tracing.js';
import { NativeConnection } from '@temporalio/worker';
import got from 'got';
import type { Logger } from 'pino';
import { createAppRegistry, type AppRegistryConfig } from '../apps/app-registry.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';
import { Reconciliation } from '../reconciliation/reconciliation.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../orders/contract/search-attributes.js';
import { registerSearchAttributes } from '../temporal/search-attribute-registration.js';
import { createWorkers } from './create-worker.js';
import { limitWorkflowThreadHeaps, workerMemoryPlan } from './memory-budget.js';
import { DeliveryDispatcher } from '../webhooks/dispatcher.js';
import { Housekeeping } from './housekeeping.js';
import { ProviderResults } from '../orders/provider-results.js';
import { Periodic } from './periodic.js';
import { OrphanOrderReconciler } from '../orders/reconciler.js';
import { sweepEnteredTokens } from '../orders/one-time-instruments.js';

export interface WorkerProcessOptions {
  orm: MikroORM;
  /** Connections for webhook tries alone (default: orm's). */
  webhookOrm?: MikroORM;
  paymentConcurrency?: number;
  logger: Logger;
  temporalAddress: string;
  namespace: string;
  apps: AppRegistryConfig;
  masterKeys: MasterKeys;
  orphanOrderGraceMs: number;
  /** The worker's memory budget in MB (WORKER_MEMORY_MB): its workflow threads' heap limit and cache follow from it. */
  memoryBudgetMb: number;
  /** Set: this many cached order workflows, whatever the budget gives. */
  maxCachedWorkflows?: number;
  /** Set: workflows, activities and the workflows this process starts are traced. */
  tracing?: Tracing;
}

export interface RunningWorker {
  /** Resolves when the worker has stopped, after stop() or a fatal error. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The worker process's whole job: run order and webhook workflows and their activities, start the
 * workflows of orphaned orders and lost deliveries, and clear expired rows.
 */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<RunningWorker> {
  const clientConnection = await Connection.connect({ address: options.temporalAddress });
  await registerSearchAttributes(clientConnection, options.namespace, ORDER_SEARCH_ATTRIBUTES);
  const client = new Client({
    connection: clientConnection,
    namespace: options.namespace,
    ...clientTracing(options.tracing),
  });
  const connection = await NativeConnection.connect({ address: options.temporalAddress });
  const apps = createAppRegistry(got, options.apps);
  const memory = workerMemoryPlan(options.memoryBudgetMb, options.maxCachedWorkflows);
  limitWorkflowThreadHeaps(memory);
  const worker = await createWorkers({
    connection,
    namespace: options.namespace,
    orm: options.orm,
    webhookOrm: options.webhookOrm,
    paymentConcurrency: options.paymentConcurrency,
    apps,
    masterKeys: options.masterKeys,
    temporal: client,
    outboundUrls: options.apps.outboundUrls,
    maxCachedWorkflows: memory.maxCachedWorkflows,
    tracing: options.tracing,
  });
  const reconciler = new OrphanOrderReconciler({
    orm: options.orm,
    client,
    logger: options.logger,
    graceMs: options.orphanOrderGraceMs,
  });
  const housekeeping = new Housekeeping(options.orm);
  // Results a provider told that reached no workflow (Temporal away, a worker of before refusing).
  const providerResults = new ProviderResults({ orm: options.orm, temporal: client, logger: options.logger });
  const reconciliation = new Reconciliation({
    orm: options.orm,
    apps,
    secretBox: SecretBox.fromMasterKeys(options.masterKeys),
    temporal: client,
    logger: options.logger,
  });
  const dispatcher = new DeliveryDispatcher(options.orm, client, { logger: options.logger });
  const jobs = [
    new Periodic('orphan order reconciliation', (stopping) => reconciler.runOnce(stopping), 5_000, options.logger),
    new Periodic('webhook delivery dispatch', () => dispatcher.runOnce(), 5_000, options.logger),
    new Periodic(
      'stalled webhook delivery revival',
      (signal) => dispatcher.reviveStalled(signal),
      60_000,
      options.logger,
    ),
    new Periodic('housekeeping', () => housekeeping.runOnce(), 60_000, options.logger),
    new Periodic(
      'redelivery of provider results',
      (signal) => providerResults.deliverStored(signal),
      60_000,
      options.logger,
    ),
    new Periodic(
      'sweep of one-time tokens',
      async (signal) => {
        const erased = await sweepEnteredTokens(options.orm, signal);
        if (erased) options.logger.info({ erased }, 'erased one-time tokens that can pay nothing more');
      },
      10 * 60_000,
      options.logger,
    ),
    new Periodic(
      'reconciliation',
      (signal) => reconciliation.runScheduled(new Date(), signal),
      10 * 60_000,
      options.logger,
    ),
  ];
  for (const job of jobs) job.start();
  const done = worker.run().finally(async () => {
    for (const job of jobs) await job.stop();
    await connection.close();
    await clientConnection.close();
  });
  return {
    done,
    async stop() {
      // shutdown() lets activities in flight finish; the server re-dispatches anything left over.
      worker.shutdown();
      await done;
    },
  };
}
