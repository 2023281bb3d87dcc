// `npm start`: the whole system on one machine with no configuration. See README "Set up".
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { clientTracing, startTracing } from '../observability/tracing.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startApiServer } from '../app/server.js';
import { appRegistryConfig, createAppRegistry } from '../apps/app-registry.js';
import got from 'got';
import { apiSettings, loadConfig } from '../config.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../db/embedded-database.js';
import { loadOrCreateMasterKeyFile } from '../db/master-key-file.js';
import { openDatabase } from '../db/orm.js';
import { createLogger } from '../logger.js';
import { connectApiToTemporal } from '../temporal/connection.js';
import { ensureTemporalCli } from './temporal/cli-binary.js';
import { startDevServer } from './temporal/dev-server.js';
import { startWorkerProcess } from '../worker/run-worker.js';
import { installSdkLogger } from '../worker/sdk-logger.js';
import { freePort } from '../observability/free-port.js';
import { firstRunMessage } from './first-run.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../orders/contract/search-attributes.js';

// Local development: tenants' provider and webhook URLs may be http on loopback (unless set otherwise).
const config = loadConfig({ ALLOW_LOOPBACK_HTTP: 'true', ...process.env });
const logger = createLogger('start', config.logLevel, config.logFormat);
const workerLogger = createLogger('worker', config.logLevel, config.logFormat);
const tracing = startTracing('payment-scheduler', config.otelEndpoint);
const stops: (() => Promise<unknown>)[] = [];

async function main() {
  mkdirSync(config.dataDir, { recursive: true });
  // The SDK says what goes wrong, not what goes right (its workers starting, the workflow bundle's
  // webpack listing); its metrics are served with ours on the API's /metrics.
  const sdkMetricsAddress = `127.0.0.1:${await freePort()}`;
  installSdkLogger(workerLogger, 'WARN', 'WARN', sdkMetricsAddress);
  let temporalAddress = config.temporalAddress;
  let temporalUi = 'your Temporal UI';
  if (!temporalAddress) {
    const executable = ensureTemporalCli(config, (line) => logger.info(line));
    const server = {
      dbFilename: join(config.dataDir, 'temporal.sqlite'),
      ip: '127.0.0.1',
      port: config.temporalPort,
      uiPort: config.temporalUiPort,
    };
    if (executable.type === 'existing-path') {
      // The worker registers the order search attributes as it starts.
      const devServer = await startDevServer({
        executable: executable.path,
        namespace: config.temporalNamespace,
        ...server,
      });
      stops.unshift(() => devServer.stop());
      temporalAddress = devServer.address;
    } else {
      // No CLI here: the SDK downloads one and runs it.
      const devServer = await TestWorkflowEnvironment.createLocal({
        server: { executable, ui: true, searchAttributes: ORDER_SEARCH_ATTRIBUTES, ...server },
      });
      stops.unshift(() => devServer.teardown());
      temporalAddress = devServer.address;
    }
    temporalUi = `http://127.0.0.1:${config.temporalUiPort}`;
  }

  let databaseUrl = config.databaseUrl;
  let poolSize = config.databasePoolSize;
  if (!databaseUrl) {
    const embedded: EmbeddedDatabase = await startEmbeddedDatabase(
      config.embeddedDbPort,
      join(config.dataDir, 'pglite'),
    );
    stops.unshift(() => embedded.stop());
    databaseUrl = embedded.url;
    poolSize = 1;
  }
  const orm = await openDatabase({ url: databaseUrl, poolSize, migrate: true, log: (line) => logger.debug(line) });
  stops.unshift(() => orm.close());

  const sandbox = spawn(process.execPath, ['--import', 'tsx', 'apps/sandbox/main.ts'], {
    env: {
      ...process.env,
      SANDBOX_PORT: String(config.sandboxPort),
      SANDBOX_HOST: config.sandboxHost,
      SANDBOX_DATA_DIR: config.sandboxDataDir,
    },
    // Its address is in the banner; its errors still show.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  stops.unshift(
    () =>
      new Promise((resolve) => {
        if (sandbox.exitCode !== null) return resolve(undefined);
        sandbox.once('exit', resolve);
        sandbox.kill('SIGTERM');
      }),
  );

  const masterKeys = config.masterKey
    ? { current: config.masterKey, previous: config.masterKeyPrevious }
    : loadOrCreateMasterKeyFile(join(config.dataDir, 'master.key'));
  const worker = await startWorkerProcess({
    orm,
    paymentConcurrency: config.paymentConcurrency,
    logger: workerLogger,
    temporalAddress,
    namespace: config.temporalNamespace,
    apps: appRegistryConfig(config),
    masterKeys,
    orphanOrderGraceMs: config.orphanOrderGraceMs,
    memoryBudgetMb: config.workerMemoryMb,
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
    tracing,
  });
  stops.unshift(() => worker.stop());

  // The first run's own calls to the API (making the first tenant) are not news: requests are logged from the banner on.
  const apiLogger = createLogger('api', 'warn', config.logFormat);
  const connection = await connectApiToTemporal(temporalAddress);
  stops.unshift(() => connection.close());
  const temporal = new Client({
    connection,
    namespace: config.temporalNamespace,
    ...clientTracing(tracing),
  });
  const api = await startApiServer(
    {
      orm,
      temporal,
      logger: apiLogger,
      masterKeys,
      settings: apiSettings(config),
      apps: createAppRegistry(got, appRegistryConfig(config)),
      sdkMetricsUrl: `http://${sdkMetricsAddress}/metrics`,
      // Undefined with the embedded PGlite, which serves one session at a time: nothing is cached then.
      rowChangesUrl: config.databaseUrl,
    },
    config.apiPort,
    config.apiHost,
  );
  stops.unshift(() => api.close());

  const firstRun = await firstRunMessage(orm, masterKeys, api.url, config.dataDir);
  console.log(`
Payment scheduler is running.
  API            ${api.url}   (docs: ${api.url}/docs, OpenAPI: ${api.url}/openapi.json)
  Temporal UI    ${temporalUi}   (namespace ${config.temporalNamespace}; orders are workflows "order/{tenantId}/{orderRef}")
  Temporal       ${temporalAddress}
  Sandbox PSP    ${config.sandboxUrl}
  Metrics        ${api.url}/metrics   (Prometheus: the API's, the worker's and the Temporal SDK's)
  Database       ${config.databaseUrl ? 'DATABASE_URL' : `embedded PGlite in ${join(config.dataDir, 'pglite')}`}

${firstRun}
Try first: the README's "Try it" signs in with the account key, creates a tenant with a tenant key,
installs the sandbox card app and a card scheme, and submits an order that settles ten seconds later.
Ctrl-C stops everything.`);
  apiLogger.level = config.logLevel;
  await worker.done;
}

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  for (const stop of stops) {
    await stop().catch((err) => logger.warn({ err }, 'error while stopping'));
  }
  await tracing?.shutdown();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

main().then(
  () => shutdown(0),
  (err) => {
    logger.error({ err }, 'start failed');
    void shutdown(1);
  },
);
