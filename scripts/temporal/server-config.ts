import type { TemporalDatabases } from './server-database.js';

/** The ports a single-host Temporal server listens on, all on loopback. */
export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  frontendMembership: number;
  historyMembership: number;
  matchingMembership: number;
  workerMembership: number;
}

/** Temporal's usual layout around a frontend port (7233: 7234 history, 7235 matching, 7239 worker, 6933… membership). */
export function portsAround(frontend: number): TemporalServerPorts {
  return {
    frontend,
    frontendHttp: frontend + 10,
    history: frontend + 1,
    matching: frontend + 2,
    worker: frontend + 6,
    frontendMembership: frontend - 300,
    historyMembership: frontend - 299,
    matchingMembership: frontend - 298,
    workerMembership: frontend - 294,
  };
}

/**
 * The server's configuration: every service in one process, on PostgreSQL for both its store and
 * SQL advanced visibility (custom search attributes, list filters), started from the server
 * module's `config/development-postgres12.yaml` without archival, pprof or metrics ports.
 */
export function temporalServerConfig(
  db: TemporalDatabases,
  ports: TemporalServerPorts,
  dynamicConfigPath: string,
  logLevel = 'warn',
) {
  const datastore = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, number> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra },
  });
  return {
    log: { stdout: true, level: logLevel },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: datastore(db.history, 20), visibility: datastore(db.visibility, 4) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: rpc(ports.frontend, ports.frontendMembership, { httpPort: ports.frontendHttp }),
      history: rpc(ports.history, ports.historyMembership),
      matching: rpc(ports.matching, ports.matchingMembership),
      worker: rpc(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${ports.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: dynamicConfigPath, pollInterval: '10s' },
  };
}

/** Server settings that differ from the defaults, as the dev server sets them. */
export const TEMPORAL_DYNAMIC_CONFIG = {
  // A search attribute registered at start is usable by the next request, not a cache refresh later.
  'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true, constraints: {} }],
  'frontend.enableUpdateWorkflowExecution': [{ value: true, constraints: {} }],
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted': [{ value: true, constraints: {} }],
};

/** The UI server's configuration: no authentication, so it binds loopback only. */
export function temporalUiConfig(frontendAddress: string, port: number, namespace: string) {
  return {
    temporalGrpcAddress: frontendAddress,
    host: '127.0.0.1',
    port,
    enableUi: true,
    defaultNamespace: namespace,
    showTemporalSystemNamespace: false,
    notifyOnNewVersion: false,
    cors: { cookieInsecure: true, allowOrigins: [] },
  };
}
