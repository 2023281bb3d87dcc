// `npm run api`: the API alone, for deployment. Needs DATABASE_URL, MASTER_KEY and a reachable Temporal server.
import { Client } from '@temporalio/client';
import { clientTracing, startTracing } from '../observability/tracing.js';
import got from 'got';
import { appRegistryConfig, createAppRegistry } from '../apps/app-registry.js';
import { apiSettings, loadConfig } from '../config.js';
import { openDatabase } from '../db/orm.js';
import { createLogger } from '../logger.js';
import { connectApiToTemporal } from '../temporal/connection.js';
import { startApiServer } from './server.js';

const config = loadConfig();
const tracing = startTracing('payment-scheduler-api', config.otelEndpoint);
const logger = createLogger('api', config.logLevel, config.logFormat);
if (!config.databaseUrl) throw new Error('DATABASE_URL is required for `npm run api` (`npm start` provides one)');
if (!config.masterKey) throw new Error('MASTER_KEY (base64 of 32 random bytes) is required for `npm run api`');

const orm = await openDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize, migrate: true });
const connection = await connectApiToTemporal(config.temporalAddress ?? `127.0.0.1:${config.temporalPort}`);
// Traced: each workflow it starts (or signals) carries the request's trace in its headers.
const temporal = new Client({
  connection,
  namespace: config.temporalNamespace,
  ...clientTracing(tracing),
});
const api = await startApiServer(
  {
    orm,
    temporal,
    logger,
    masterKeys: { current: config.masterKey, previous: config.masterKeyPrevious },
    settings: apiSettings(config),
    apps: createAppRegistry(got, appRegistryConfig(config)),
    rowChangesUrl: config.databaseUrl,
  },
  config.apiPort,
  config.apiHost,
);
logger.info({ url: api.url }, 'api listening');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void shutDown(signal));
}

async function shutDown(signal: NodeJS.Signals): Promise<void> {
  logger.info({ signal }, 'shutting down');
  await api.close();
  await connection.close();
  await orm.close();
  await tracing?.shutdown();
  process.exit(0);
}
