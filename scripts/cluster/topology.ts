import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { stringify } from 'yaml';
import { openDatabase } from '../../db/orm.js';
import { portIsFree } from '../../observability/free-port.js';
import type { MasterKeys } from '../../db/secret-box.js';
import type { TemporalServerBinaries } from '../temporal/server-binaries.js';
import {
  TEMPORAL_DYNAMIC_CONFIG,
  temporalServerConfig,
  temporalUiConfig,
  type TemporalServerPorts,
} from '../temporal/server-config.js';
import { dropTemporalDatabases, prepareTemporalDatabases, temporalDatabasesOn } from '../temporal/server-database.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { PAYMENTS_TASK_QUEUE } from '../../orders/contract/ids.js';
import {
  CustomerRefKey,
  NextActionAtKey,
  OrderRefKey,
  ORDER_SEARCH_ATTRIBUTES,
  OrderStatusKey,
  TenantIdKey,
} from '../../orders/contract/search-attributes.js';
import { ManagedProcess, waitUntil } from './managed-process.js';
import { buildForProduction, builtEntryPoint, PRODUCTION_ENV } from '../build/production-build.js';
import { workerNodeFlagsFor } from '../../worker/memory-budget.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const NAMESPACE = 'default';

export interface ClusterOptions {
  /** The application's database; the Temporal server's two databases go on the same PostgreSQL server. */
  databaseUrl: string;
  /** Names of the Temporal server's databases (default `temporal`, `temporal_visibility`). */
  temporalDatabases?: { history: string; visibility: string };
  binaries: TemporalServerBinaries;
  /** Configuration files, logs and the sandbox ledger go here. */
  dataDir: string;
  masterKeys: MasterKeys;
  ports: { apis: number[]; sandbox: number; temporal: TemporalServerPorts; ui: number };
  workers?: number;
  /** Only the Temporal server and its UI (CI runs the end-to-end tests' own processes against them). */
  temporalOnly?: boolean;
  /** Start the Temporal server from empty databases. */
  resetTemporal?: boolean;
  logLevel?: string;
  /** More environment for the application's processes (e.g. SANDBOX_SETTLE_MS). */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface Cluster {
  temporalAddress: string;
  uiUrl: string;
  apiUrls: string[];
  sandboxUrl: string;
  temporal: ManagedProcess;
  ui: ManagedProcess;
  sandbox: ManagedProcess;
  workers: ManagedProcess[];
  apis: ManagedProcess[];
  /** Every process, in the order they start. */
  all(): ManagedProcess[];
  /** Starts a stopped or killed process again and waits until it serves. */
  restart(process: ManagedProcess): Promise<void>;
  /** Stops every process, the last started first. */
  stop(): Promise<void>;
}

/**
 * The production topology on one machine (ARCHITECTURE.md, "Production topology"): the Temporal
 * server on PostgreSQL with SQL visibility, the Temporal UI server, the sandbox provider, workers
 * and API processes, each its own process as a deployment runs them. Waits until each serves.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? (() => undefined);
  const { ports } = options;
  const temporalAddress = `127.0.0.1:${ports.temporal.frontend}`;
  const logsDir = join(options.dataDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const started: ManagedProcess[] = [];
  const stop = async () => {
    for (const member of [...started].reverse()) await member.stop();
  };

  try {
    // A port already taken (say, by a cluster left running) would have the new processes answer
    // for the old ones: refuse at once, naming it.
    const wanted: number[] = [
      ...(Object.values(ports.temporal) as number[]),
      ports.ui,
      ...(options.temporalOnly ? [] : [ports.sandbox, ...ports.apis]),
    ];
    const taken = (await Promise.all(wanted.map(async (port) => ((await portIsFree(port)) ? undefined : port)))).filter(
      (port): port is number => port !== undefined,
    );
    if (taken.length > 0)
      throw new Error(`port(s) ${taken.join(', ')} on 127.0.0.1 are in use (another cluster still running?)`);

    log('preparing the Temporal server’s databases and the application’s');
    const db = temporalDatabasesOn(options.databaseUrl, options.temporalDatabases);
    if (options.resetTemporal) await dropTemporalDatabases(db, options.databaseUrl);
    await prepareTemporalDatabases(db, options.binaries.sqlTool, options.binaries.schemaDir, options.databaseUrl);
    // Migrated once here, so that the API processes starting side by side find nothing to do.
    await (await openDatabase({ url: options.databaseUrl, poolSize: 1, migrate: true, log: () => undefined })).close();

    const temporalRoot = join(options.dataDir, 'temporal-server');
    mkdirSync(join(temporalRoot, 'config'), { recursive: true });
    const dynamicConfig = join(temporalRoot, 'config', 'dynamic.yaml');
    writeFileSync(dynamicConfig, stringify(TEMPORAL_DYNAMIC_CONFIG));
    writeFileSync(
      join(temporalRoot, 'config', 'cluster.yaml'),
      stringify(temporalServerConfig(db, ports.temporal, dynamicConfig)),
      { mode: 0o600 },
    );
    const temporal = new ManagedProcess('temporal-server', {
      command: options.binaries.server,
      args: ['--root', temporalRoot, '--config', 'config', '--env', 'cluster', '--allow-no-auth', 'start'],
      env: { PATH: process.env.PATH },
      logFile: join(logsDir, 'temporal-server.log'),
    });
    const uiRoot = join(options.dataDir, 'temporal-ui');
    mkdirSync(join(uiRoot, 'config'), { recursive: true });
    writeFileSync(
      join(uiRoot, 'config', 'cluster.yaml'),
      stringify(temporalUiConfig(temporalAddress, ports.ui, NAMESPACE)),
    );
    const ui = new ManagedProcess('temporal-ui', {
      command: options.binaries.ui,
      args: ['--root', uiRoot, '--config', 'config', '--env', 'cluster', 'start'],
      env: { PATH: process.env.PATH },
      logFile: join(logsDir, 'temporal-ui.log'),
    });

    const sandboxUrl = `http://127.0.0.1:${ports.sandbox}`;
    const apiUrls = ports.apis.map((port) => `http://127.0.0.1:${port}`);
    const appEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
      ...PRODUCTION_ENV,
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: options.databaseUrl,
      MASTER_KEY: options.masterKeys.current,
      MASTER_KEY_PREVIOUS: (options.masterKeys.previous ?? []).join(','),
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: NAMESPACE,
      SANDBOX_URL: sandboxUrl,
      // Providers call back to the first API; any API would do.
      PUBLIC_API_URL: apiUrls[0],
      ALLOW_LOOPBACK_HTTP: 'true',
      LOG_LEVEL: options.logLevel ?? 'info',
      ...options.env,
      ...extra,
    });
    // The application's processes run the production build, as deployed: built now, from these sources.
    if (!options.temporalOnly) {
      log('building the application (npm run build)');
      await buildForProduction();
    }
    const node = (name: string, script: string, extra: Record<string, string> = {}, flags: string[] = []) =>
      new ManagedProcess(name, {
        command: process.execPath,
        args: [...flags, builtEntryPoint(script)],
        cwd: projectRoot,
        env: appEnv(extra),
        logFile: join(logsDir, `${name}.log`),
      });
    const sandbox = node('sandbox', 'apps/sandbox/main.ts', {
      SANDBOX_PORT: String(ports.sandbox),
      SANDBOX_DATA_DIR: join(options.dataDir, 'sandbox'),
    });
    const workerFlags = workerNodeFlagsFor(appEnv({}));
    const workers = Array.from({ length: options.workers ?? 2 }, (_, i) =>
      node(`worker-${i + 1}`, 'worker/main.ts', {}, workerFlags),
    );
    const apis = ports.apis.map((port, i) => node(`api-${i + 1}`, 'app/main.ts', { API_PORT: String(port) }));

    const waitFor: Record<string, () => Promise<void>> = {
      'temporal-server': async () => {
        await waitUntil('the Temporal frontend', () => frontendServes(temporalAddress), temporal, 90_000);
        await ensureNamespace(temporalAddress);
      },
      'temporal-ui': () =>
        waitUntil('the Temporal UI', () => answers(`http://127.0.0.1:${ports.ui}/api/v1/namespaces`), ui),
      sandbox: () => waitUntil('the sandbox provider', () => answers(`${sandboxUrl}/healthz`), sandbox),
      ...Object.fromEntries(
        workers.map((w) => [
          w.name,
          () =>
            waitUntil(
              `${w.name} to poll`,
              () => pollers(temporalAddress).then((ids) => ids.some((id) => id.startsWith(`${w.pid}@`))),
              w,
            ),
        ]),
      ),
      ...Object.fromEntries(
        apis.map((a, i) => [
          a.name,
          () => waitUntil(`${a.name} to be ready`, () => answers(`${apiUrls[i]}/readyz`), a),
        ]),
      ),
    };
    const bringUp = async (member: ManagedProcess) => {
      log(`starting ${member.name}`);
      member.start();
      if (!started.includes(member)) started.push(member);
      await waitFor[member.name]();
    };
    for (const member of options.temporalOnly ? [temporal, ui] : [temporal, ui, sandbox, ...workers, ...apis])
      await bringUp(member);

    return {
      temporalAddress,
      uiUrl: `http://127.0.0.1:${ports.ui}`,
      apiUrls,
      sandboxUrl,
      temporal,
      ui,
      sandbox,
      workers,
      apis,
      all: () => [...started],
      restart: async (member) => {
        await member.stop();
        await bringUp(member);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function answers(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.ok;
}

async function frontendServes(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    await connection.workflowService.getSystemInfo({});
    return true;
  } finally {
    await connection.close();
  }
}

/** The namespace the application uses, registered once, with the order search attributes. */
async function ensureNamespace(address: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const exists = await connection.workflowService.describeNamespace({ namespace: NAMESPACE }).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await connection.workflowService.registerNamespace({
        namespace: NAMESPACE,
        workflowExecutionRetentionPeriod: msToTs('7 days'),
      });
    }
    await waitUntil(`namespace ${NAMESPACE}`, async () => {
      await connection.workflowService.listWorkflowExecutions({ namespace: NAMESPACE, pageSize: 1 });
      return true;
    });
    await registerSearchAttributes(connection, NAMESPACE, ORDER_SEARCH_ATTRIBUTES);
    // A namespace and its attributes reach the history service a little after the frontend answers
    // for them: ready once a workflow with every order attribute starts (it is terminated at once).
    const client = new Client({ connection, namespace: NAMESPACE });
    await waitUntil(`namespace ${NAMESPACE} to take workflows`, async () => {
      const handle = await client.workflow.start('clusterReadinessProbe', {
        taskQueue: 'cluster-readiness-probe',
        workflowId: `cluster-readiness-${randomUUID()}`,
        typedSearchAttributes: [
          { key: TenantIdKey, value: 'probe' },
          { key: OrderRefKey, value: 'probe' },
          { key: CustomerRefKey, value: 'probe' },
          { key: OrderStatusKey, value: 'ACTIVE' },
          { key: NextActionAtKey, value: new Date() },
        ],
      });
      await handle.terminate('readiness probe');
      return true;
    });
  } finally {
    await connection.close();
  }
}

/** The identities (`pid@host`) of the workers polling the payments task queue. */
async function pollers(address: string): Promise<string[]> {
  const connection = await Connection.connect({ address });
  try {
    const described = await connection.workflowService.describeTaskQueue({
      namespace: NAMESPACE,
      taskQueue: { name: PAYMENTS_TASK_QUEUE },
    });
    return (described.pollers ?? []).map((poller) => poller.identity ?? '');
  } finally {
    await connection.close();
  }
}
