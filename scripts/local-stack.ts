import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import got from 'got';
import { bootstrapAccount, type BootstrappedAccount } from '../api/auth/bootstrap-account.js';
import { startApiServer, type RunningApi } from '../app/server.js';
import { createAppRegistry } from '../apps/app-registry.js';
import { createSandboxApp } from '../apps/sandbox/server.js';
import { apiSettings, type ApiSettings, type Config } from '../config.js';
import { startEmbeddedDatabase } from '../db/embedded-database.js';
import { openDatabase } from '../db/orm.js';
import type { MasterKeys } from '../db/secret-box.js';
import { createLogger } from '../logger.js';
import { ensureTemporalCli } from './temporal/cli-binary.js';
import { registerSearchAttributes } from '../temporal/search-attribute-registration.js';
import { bundlePaymentWorkflows, createWorkers } from '../worker/create-worker.js';
import { installSdkLogger } from '../worker/sdk-logger.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../orders/contract/search-attributes.js';
import { setUpFirstTenant, type FirstTenant } from './first-tenant.js';
import { freePort } from '../observability/free-port.js';

export interface LocalStack {
  api: RunningApi;
  orm: MikroORM;
  temporal: Client;
  masterKeys: MasterKeys;
  /** Where the application's database, Temporal and the sandbox provider answer (for processes a caller starts). */
  databaseUrl: string;
  temporalAddress: string;
  sandboxUrl: string;
  /** A new account with a tenant ready for orders (SANDBOX_CARD installed, a default card scheme). */
  newTenant(
    name?: string,
  ): Promise<{ account: BootstrappedAccount; tenant: FirstTenant; client: PaymentSchedulerClient }>;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** False: no worker in this process (the caller runs `worker/main.ts` itself). */
  worker?: boolean;
  /** The Temporal SDK's own log level (default WARN; ERROR keeps activity failures a benchmark causes on purpose quiet). */
  sdkLogLevel?: 'WARN' | 'ERROR';
}

/**
 * The whole system in this process, for the benchmarks and the fuzzer: PostgreSQL at DATABASE_URL
 * (or an in-memory embedded database), the Temporal server at TEMPORAL_ADDRESS (or a dev server of
 * its own), the sandbox provider, a worker and the API on a free port.
 */
export async function startLocalStack(
  config: Config,
  settings: Partial<ApiSettings> = {},
  options: LocalStackOptions = {},
): Promise<LocalStack> {
  // The SDK's info lines (workers starting and draining) would bury what the caller prints.
  installSdkLogger(createLogger('worker', config.logLevel), options.sdkLogLevel ?? 'WARN');
  // Last: the SDK's runtime. It stops by itself when its last worker does; with no worker in this
  // process (and a Temporal server elsewhere) nothing would stop it, and the process would not exit.
  const stops: (() => Promise<unknown>)[] = [() => Runtime.instance().shutdown()];
  const stop = async () => {
    for (const step of stops) await step().catch(() => undefined);
  };
  try {
    const embedded = config.databaseUrl ? undefined : await startEmbeddedDatabase(await freePort());
    if (embedded) stops.unshift(() => embedded.stop());
    const poolSize = embedded ? 1 : config.databasePoolSize;
    const orm = await openDatabase({
      url: config.databaseUrl ?? embedded!.url,
      poolSize,
      migrate: true,
      log: () => undefined,
    });
    stops.unshift(() => orm.close());
    let temporalAddress = config.temporalAddress;
    if (!temporalAddress) {
      const temporalServer = await TestWorkflowEnvironment.createLocal({
        server: {
          executable: ensureTemporalCli(config),
          ip: '127.0.0.1',
          searchAttributes: ORDER_SEARCH_ATTRIBUTES,
          log: { format: 'pretty', level: 'error' },
        },
      });
      stops.unshift(() => temporalServer.teardown());
      temporalAddress = temporalServer.address;
    }

    const sandboxDir = mkdtempSync(join(tmpdir(), 'sandbox-'));
    const sandbox = createSandboxApp({ dataDir: sandboxDir, latencyMs: config.sandboxLatencyMs, log: () => undefined });
    const sandboxServer: Server = sandbox.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => sandboxServer.once('listening', resolve));
    stops.unshift(async () => {
      await new Promise((resolve) => sandboxServer.close(resolve));
      await sandbox.close();
      rmSync(sandboxDir, { recursive: true, force: true });
    });

    const apiPort = await freePort();
    const apps = createAppRegistry(got, {
      sandboxUrl: `http://127.0.0.1:${(sandboxServer.address() as { port: number }).port}`,
      callbackBaseUrl: `http://127.0.0.1:${apiPort}`,
      outboundUrls: { allowLoopbackHttp: true },
    });
    const masterKeys = { current: randomBytes(32).toString('base64') };
    const connection = await Connection.connect({ address: temporalAddress });
    stops.unshift(() => connection.close());
    const temporal = new Client({ connection });
    // A dev server of its own was given them at start; an external server may not have them yet.
    if (config.temporalAddress) await registerSearchAttributes(connection, 'default', ORDER_SEARCH_ATTRIBUTES);
    if (options.worker !== false) {
      const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
      const worker = await createWorkers({
        connection: nativeConnection,
        namespace: 'default',
        orm,
        paymentConcurrency: config.paymentConcurrency,
        apps,
        masterKeys,
        temporal,
        outboundUrls: { allowLoopbackHttp: true },
        workflowBundle: await bundlePaymentWorkflows(new DefaultLogger('WARN')),
      });
      const running = worker.run();
      stops.unshift(async () => {
        worker.shutdown();
        await running;
        await nativeConnection.close();
      });
    }
    const api = await startApiServer(
      {
        orm,
        temporal,
        logger: createLogger('api', 'fatal'),
        masterKeys,
        apps,
        rowChangesUrl: config.databaseUrl,
        settings: {
          ...apiSettings(config),
          allowLoopbackHttp: true,
          publicApiUrl: `http://127.0.0.1:${apiPort}`,
          ...settings,
        },
      },
      apiPort,
    );
    stops.unshift(() => api.close());

    return {
      api,
      orm,
      temporal,
      masterKeys,
      databaseUrl: config.databaseUrl ?? embedded!.url,
      temporalAddress,
      sandboxUrl: `http://127.0.0.1:${(sandboxServer.address() as { port: number }).port}`,
      async newTenant(name = 'account') {
        const account = await bootstrapAccount(orm, masterKeys, name);
        const tenant = await setUpFirstTenant(api.url, account);
        const { publicKey, privateKey, tenantId } = tenant;
        return {
          account,
          tenant,
          client: new PaymentSchedulerClient({ baseUrl: api.url, publicKey, privateKey, tenantId }),
        };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
