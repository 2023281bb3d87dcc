import { randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type LogLevel } from '@temporalio/worker';
import got from 'got';
import { pino } from 'pino';
import { inject } from 'vitest';
import { bootstrapAccount, type BootstrappedAccount } from '../../api/auth/bootstrap-account.js';
import type { ApiDependencies } from '../../app/create-api.js';
import { startApiServer, type RunningApi } from '../../app/server.js';
import { createAppRegistry } from '../../apps/app-registry.js';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { openDatabase } from '../../db/orm.js';
import { apiSettings, loadConfig, type ApiSettings } from '../../config.js';
import type { MasterKeys } from '../../db/secret-box.js';
import { createLogger } from '../../logger.js';
import { createWorkers, type PaymentWorkers } from '../../worker/create-worker.js';
import { installSdkLogger } from '../../worker/sdk-logger.js';
import { OrphanOrderReconciler } from '../../orders/reconciler.js';
import { freePort } from '../../observability/free-port.js';
import { startSandbox, type RunningSandbox } from './sandbox.js';
import { eventually } from './eventually.js';
import { capturingLogger } from './capturing-logger.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';
import { lane } from './lanes.js';
import { testWorkflowBundle } from './workflow-bundle.js';
import { EndpointPace } from '../../webhooks/endpoint-pace.js';

export interface TenantFixture {
  accountId: string;
  tenantId: string;
  /** Signed in as a tenant-admin key of the tenant. */
  client: PaymentSchedulerClient;
  /** `client`'s key, sending to another API (one a test started with other dependencies or settings). */
  clientAt(baseUrl: string): PaymentSchedulerClient;
  account: PaymentSchedulerClient;
  publicKey: string;
  privateKey: string;
  /** The tenant's key at the sandbox provider, as its SANDBOX_* installations hold it. */
  sandboxApiKey: string;
  /** Installs SANDBOX_BANK and makes a collection scheme paying by bank debit through it: its id. */
  bankDebitScheme(): Promise<string>;
}

export interface TenantOptions {
  /** Roles of the key the fixture's client signs in with. */
  roles?: string[];
  /**
   * Fields of the tenant itself (time zone, dunning). Business days are off (businessDayRule NONE)
   * unless a test sets a rule: a bank debit due now must not wait for Monday when the suite runs on a Sunday.
   */
  tenant?: Record<string, unknown>;
  /** Install SANDBOX_CARD and make a default card scheme, so orders can be taken (default true). */
  paymentSetup?: boolean;
  /** Made by this tenant's account, not a new one. */
  inAccountOf?: TenantFixture;
}

export interface TestSystem {
  api: RunningApi;
  orm: MikroORM;
  sandbox: RunningSandbox;
  client: Client;
  reconciler: OrphanOrderReconciler;
  /** The current master key (base64), of `masterKeys`. */
  masterKey: string;
  masterKeys: MasterKeys;
  /** Every line the API logged, at debug level, for checks that secrets never reach a log. */
  logLines: string[];
  /** Every secret handed out (private keys, app API keys, webhook secrets, link tokens), for the secrets-in-logs checks. */
  issuedSecrets: string[];
  newAccount(): Promise<BootstrappedAccount & { client: PaymentSchedulerClient }>;
  newTenant(options?: TenantOptions): Promise<TenantFixture>;
  /** A second API process on the same database, with other dependencies or settings; close it after use. */
  startApi(
    overrides?: Partial<Omit<ApiDependencies, 'settings'>> & { settings?: Partial<ApiSettings> },
  ): Promise<RunningApi>;
  /** A second API process, once both it and the first hear row changes (so keep what they read); close it after use. */
  startListeningApi(): Promise<RunningApi>;
  close(): Promise<void>;
}

export interface SystemOptions {
  api?: Partial<ApiSettings>;
  /** How long the worker waits for the sandbox provider before it gives up on a call (default 10 s). */
  sandboxTimeoutMs?: number;
  /** How long the sandbox holds its answer to a card_timeout payment (default 30 s). */
  sandboxHangMs?: number;
  /** How long the sandbox takes to answer each API call (default at once). */
  sandboxLatencyMs?: number;
  /** How long sandbox bank payments and refunds stay PENDING (default 300 ms). */
  sandboxSettleMs?: number;
  /** False: no worker in this process (a test runs `npm run worker` itself). */
  worker?: boolean;
  /** How long a webhook try runs before its endpoint counts as slow (default SLOW_WEBHOOK_TRY_MS). */
  webhookSlowTryMs?: number;
}

/**
 * The real stack on loopback: API and worker against the run's Temporal dev server and database,
 * paying through a sandbox provider HTTP server.
 */
export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  quietTemporalLogs();
  const { logger, lines: logLines } = capturingLogger('test', 'debug', (line) => {
    if (process.env.TEST_LOG_LEVEL) process.stdout.write(line);
  });
  const databasePoolSize = inject('databasePoolSize');
  const orm = await openDatabase({ url: lane().databaseUrl, poolSize: databasePoolSize });
  const sandbox = await startSandbox({
    settleMs: options.sandboxSettleMs ?? 300,
    hangMs: options.sandboxHangMs,
    latencyMs: options.sandboxLatencyMs,
    returnMs: 1500,
  });
  const address = lane().temporalAddress;
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  // The API's address is chosen first: providers call it back, so the connectors must know it.
  const apiPort = await freePort();
  const apps = createAppRegistry(got, {
    sandboxUrl: sandbox.url,
    callbackBaseUrl: `http://127.0.0.1:${apiPort}`,
    outboundUrls: { allowLoopbackHttp: true },
    sandboxTimeoutMs: options.sandboxTimeoutMs,
  });
  const masterKeys: MasterKeys = { current: randomBytes(32).toString('base64') };
  const nativeConnection = await NativeConnection.connect({ address });
  const worker: PaymentWorkers | undefined =
    options.worker === false
      ? undefined
      : await createWorkers({
          connection: nativeConnection,
          namespace: 'default',
          orm,

          apps,
          masterKeys,
          temporal: client,
          outboundUrls: { allowLoopbackHttp: true },
          workflowBundle: testWorkflowBundle(),
          webhookPace: new EndpointPace(options.webhookSlowTryMs),
        });
  const running = worker?.run();
  const settings = {
    ...apiSettings(loadConfig({})),
    rateLimitPerMinute: 100_000,
    allowLoopbackHttp: true,
    publicApiUrl: `http://127.0.0.1:${apiPort}`,
    ...options.api,
  };
  const startApi = (overrides: Parameters<TestSystem['startApi']>[0] = {}, port = 0) =>
    startApiServer(
      {
        orm,
        temporal: client,
        logger,
        masterKeys,
        apps,
        checkResponses: true,
        // An embedded PGlite (pool of 1) serves one session at a time: nothing to listen on.
        rowChangesUrl: databasePoolSize > 1 ? lane().databaseUrl : undefined,
        ...overrides,
        // Each API counts requests apart unless a test shares a namespace on purpose.
        settings: { ...settings, rateLimitNamespace: `test-${randomUUID()}`, ...overrides.settings },
      },
      port,
    );
  const api = await startApi({}, apiPort);
  const reconciler = new OrphanOrderReconciler({ orm, client, logger, graceMs: 0 });
  const issuedSecrets: string[] = [];

  async function newAccount() {
    const account = await bootstrapAccount(orm, masterKeys, 'test account');
    issuedSecrets.push(account.privateKey);
    return { ...account, client: new PaymentSchedulerClient({ baseUrl: api.url, ...account }) };
  }

  return {
    api,
    orm,
    sandbox,
    client,
    reconciler,
    masterKey: masterKeys.current,
    masterKeys,
    logLines,
    issuedSecrets,
    newAccount,
    startApi: (overrides = {}) => startApi({ logger: createLogger('second-api', 'silent'), ...overrides }),
    async startListeningApi() {
      const second = await startApi({ logger: createLogger('second-api', 'silent') });
      await eventually(() => api.hearsRowChanges() && second.hearsRowChanges(), Boolean, {
        what: 'both APIs listening',
      });
      return second;
    },
    async newTenant({ roles = ['tenant-admin'], tenant = {}, paymentSetup = true, inAccountOf }: TenantOptions = {}) {
      const account = inAccountOf
        ? { accountId: inAccountOf.accountId, client: inAccountOf.account }
        : await newAccount();
      const created = await account.client.request('POST', '/v1/account/tenants', {
        body: { name: 'test tenant', businessDayRule: 'NONE', ...tenant },
      });
      if (created.status !== 201) throw new Error(`tenant create failed: ${JSON.stringify(created.body)}`);
      const tenantId: string = created.body.tenantId;
      const newKey = async (keyRoles: string[]) => {
        const key = await account.client.request('POST', `/v1/account/tenants/${tenantId}/keys`, {
          body: { name: 'test key', roles: keyRoles },
        });
        if (key.status !== 201) throw new Error(`key create failed: ${JSON.stringify(key.body)}`);
        issuedSecrets.push(key.body.privateKey);
        return new PaymentSchedulerClient({
          baseUrl: api.url,
          publicKey: key.body.publicKey,
          privateKey: key.body.privateKey,
          tenantId,
        });
      };
      const client = await newKey(roles);
      const sandboxApiKey = newSandboxApiKey();
      issuedSecrets.push(sandboxApiKey);
      if (paymentSetup) {
        const admin = roles.includes('tenant-admin') ? client : await newKey(['tenant-admin']);
        await expectCreated(
          admin.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
            body: { configuration: { apiKey: sandboxApiKey } },
          }),
        );
        await expectCreated(
          admin.request('POST', '/v1/schemes/collect', {
            body: {
              name: 'cards',
              isDefault: true,
              rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
            },
          }),
        );
      }
      const { publicKey, privateKey } = client.credentials;
      return {
        accountId: account.accountId,
        tenantId,
        account: account.client,
        publicKey,
        privateKey,
        client,
        clientAt: (baseUrl: string) => new PaymentSchedulerClient({ baseUrl, publicKey, privateKey, tenantId }),
        sandboxApiKey,
        async bankDebitScheme() {
          await expectCreated(
            client.request('POST', '/v1/marketplace/apps/SANDBOX_BANK/install', {
              body: { configuration: { apiKey: sandboxApiKey } },
            }),
          );
          const scheme = await client.request<{ schemeId: string }>('POST', '/v1/schemes/collect', {
            body: {
              name: 'bank',
              rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
            },
          });
          if (scheme.status !== 201) throw new Error(`scheme create failed: ${JSON.stringify(scheme.body)}`);
          return scheme.body.schemeId;
        },
      };
    },
    async close() {
      await api.close();
      worker?.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await sandbox.close();
      await orm.close();
    },
  };
}

async function expectCreated(request: Promise<{ status: number; body: unknown }>): Promise<void> {
  const res = await request;
  if (res.status !== 201) throw new Error(`fixture set-up failed with ${res.status}: ${JSON.stringify(res.body)}`);
}

let runtimeInstalled = false;

/** Every line the Temporal SDK logged in this test process (its workers' workflows and activities), from INFO up. */
export const workerLogLines: string[] = [];

/**
 * The SDK's log goes through pino as in production (worker/sdk-logger.ts), kept from INFO up for the
 * secrets-in-logs checks. Printed only from the level the run asks for: the worker's lines drown test
 * output (tests provoke warnings on purpose); errors still show. TEST_LOG_LEVEL=debug shows all.
 */
export function quietTemporalLogs(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const shown = (process.env.TEST_LOG_LEVEL?.toUpperCase() as LogLevel | undefined) ?? 'ERROR';
  const shownFrom = pino.levels.values[shown.toLowerCase()];
  const { logger } = capturingLogger('worker', 'info', (line) => {
    workerLogLines.push(line);
    if ((JSON.parse(line) as { level: number }).level >= shownFrom) process.stderr.write(line);
  });
  installSdkLogger(logger, 'INFO', shown);
}
