// `npm run worker`: the Temporal worker alone, for deployment. Needs DATABASE_URL and a reachable Temporal server.
import { appRegistryConfig } from '../apps/app-registry.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/orm.js';
import { createLogger } from '../logger.js';
import { freePort } from '../observability/free-port.js';
import { startWorkerMetricsServer } from './metrics-server.js';
import { mainHeapFollowsPlan, workerMemoryPlan, workerNodeFlags } from './memory-budget.js';
import { startWorkerProcess } from './run-worker.js';
import { startTracing } from '../observability/tracing.js';
import { installSdkLogger } from './sdk-logger.js';

const config = loadConfig();
const tracing = startTracing('payment-scheduler-worker', config.otelEndpoint);
const logger = createLogger('worker', config.logLevel, config.logFormat);
// The SDK's metrics on a loopback port of their own, served with ours on WORKER_METRICS_PORT.
const sdkMetricsAddress = config.workerMetricsPort === undefined ? undefined : `127.0.0.1:${await freePort()}`;
installSdkLogger(logger, 'INFO', 'WARN', sdkMetricsAddress);
if (!config.databaseUrl) throw new Error('DATABASE_URL is required for `npm run worker` (`npm start` provides one)');
// It opens the tenants' app credentials, sealed under the master key.
if (!config.masterKey) throw new Error('MASTER_KEY (the API’s) is required for `npm run worker`');

const memoryPlan = workerMemoryPlan(config.workerMemoryMb, config.workerMaxCachedWorkflows);
if (!mainHeapFollowsPlan(memoryPlan)) {
  logger.warn(
    { flags: workerNodeFlags(memoryPlan).join(' ') },
    'the main thread’s heap limit does not follow WORKER_MEMORY_MB: start node with these flags (or in NODE_OPTIONS), or the worker may outgrow its budget or run short',
  );
}

const orm = await openDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize });
const webhookOrm = await openDatabase({ url: config.databaseUrl, poolSize: config.webhookDatabasePoolSize });
const worker = await startWorkerProcess({
  orm,
  webhookOrm,
  paymentConcurrency: config.paymentConcurrency,
  logger,
  temporalAddress: config.temporalAddress ?? `127.0.0.1:${config.temporalPort}`,
  namespace: config.temporalNamespace,
  apps: appRegistryConfig(config),
  masterKeys: { current: config.masterKey, previous: config.masterKeyPrevious },
  orphanOrderGraceMs: config.orphanOrderGraceMs,
  memoryBudgetMb: config.workerMemoryMb,
  maxCachedWorkflows: config.workerMaxCachedWorkflows,
  tracing,
});
const metrics =
  config.workerMetricsPort === undefined
    ? undefined
    : await startWorkerMetricsServer({
        port: config.workerMetricsPort,
        token: config.metricsToken,
        sdkMetricsUrl: `http://${sdkMetricsAddress}/metrics`,
        logger,
      });
logger.info({ metrics: metrics?.url }, 'worker running on task queue payments');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void shutDown(signal));
}
await worker.done;

async function shutDown(signal: NodeJS.Signals): Promise<void> {
  logger.info({ signal }, 'shutting down');
  await worker.stop();
  await metrics?.close();
  await orm.close();
  await webhookOrm.close();
  await tracing?.shutdown();
  process.exit(0);
}
