import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything the processes read from the environment, with the defaults `npm start` runs on. This
 * is the one place that reads process.env for settings and the one place defaults are written
 * (the README's configuration table lists the same).
 */
export interface Config {
  apiPort: number;
  /** Address the API binds; 0.0.0.0 in containers. */
  apiHost: string;
  /**
   * The API as providers and customers reach it: providers' callbacks
   * (`{publicApiUrl}/v1/providers/{appId}/callbacks`), payment links and the payment page's cookie.
   */
  publicApiUrl: string;
  /**
   * Local development: lets a tenant's provider (and webhook) URLs be plain http to loopback.
   * Otherwise only https to public addresses is called.
   */
  allowLoopbackHttp: boolean;
  sandboxPort: number;
  sandboxHost: string;
  sandboxUrl: string;
  /** The sandbox provider's ledger; it survives restarts so that no idempotency key is forgotten. */
  sandboxDataDir: string;
  /** How long a sandbox bank payment stays PENDING before it resolves and calls back. */
  sandboxSettleMs: number;
  /** How long the sandbox holds its answer to a `card_timeout` payment, to outlast client timeouts. */
  sandboxHangMs: number;
  /** How long after settling a `bank_returned` payment is returned and a `card_chargeback` one charged back. */
  sandboxReturnMs: number;
  /** How long the sandbox takes to answer each API call (a provider's latency; 0 by default). */
  sandboxLatencyMs: number;
  /** Unset: `npm start` runs a Temporal dev server on temporalPort. */
  temporalAddress?: string;
  temporalPort: number;
  temporalUiPort: number;
  temporalNamespace: string;
  /** The databases of the Temporal server `npm run cluster` runs, on DATABASE_URL's server. */
  temporalDatabases: { history: string; visibility: string };
  /** A Temporal CLI to use instead of building one. */
  temporalCliPath?: string;
  /** Unset: `npm start` serves an embedded PGlite database on embeddedDbPort. */
  databaseUrl?: string;
  /** Connections per process. */
  databasePoolSize: number;
  /**
   * Payment activities a worker runs at once. Sized for the providers' latency, not the pool: an
   * activity holds a pooled connection only for its short reads and writes, never while a provider answers.
   */
  paymentConcurrency: number;
  /** The worker's separate connections for webhook tries, so they never take a payment's connection. */
  webhookDatabasePoolSize: number;
  /** A worker's memory budget in MB: its workflow threads' heap limit and workflow cache follow from it. */
  workerMemoryMb: number;
  /** Order workflows a worker keeps in memory between their tasks (unset: as many as its memory budget allows). */
  workerMaxCachedWorkflows?: number;
  embeddedDbPort: number;
  dataDir: string;
  cacheDir: string;
  logLevel: string;
  /** LOG_FORMAT: json or pretty; unset, pretty on a terminal and JSON otherwise. */
  logFormat?: 'json' | 'pretty';
  /** Orders older than this without a workflow are started by the reconciler. */
  orphanOrderGraceMs: number;
  /** Base64 of 32 bytes. Unset: `npm start` keeps one in DATA_DIR/master.key. */
  masterKey?: string;
  /** Earlier master keys, comma-separated, still accepted for opening secrets during a rotation. */
  masterKeyPrevious: string[];
  rateLimitPerMinute: number;
  /** Separates one deployment's rate-limit counters from another's sharing the database. */
  rateLimitNamespace: string;
  /** How long a payment link stays valid unless its creator says otherwise. */
  paymentLinkTtlSeconds: number;
  /** How long a payout link is valid, by default and at most: its holder chooses where the money goes. */
  payoutLinkTtlSeconds: number;
  bodyLimit: string;
  /** Largest body of a batch of orders (1,000 orders of 12 instructions are about 3 MB). */
  batchBodyLimit: string;
  accessTokenTtlSeconds: number;
  /** An export whose client has read nothing for this long is ended: it holds a database connection. */
  exportStallSeconds: number;
  /** The longest a settlement export's query may wait for a lock on the tables it reads. */
  exportLockWaitSeconds: number;
  /** The longest a page of an instruction search may take (its statements' `statement_timeout`). */
  searchTimeoutSeconds: number;
  /** Express `trust proxy`: false (the default), a hop count, or addresses/subnets of trusted proxies. */
  trustProxy: boolean | number | string;
  /** Set: `GET /metrics` (API and worker) answers only `Authorization: Bearer {metricsToken}`. */
  metricsToken?: string;
  /** Where a worker process serves its metrics (the SDK's and ours); unset: nowhere. */
  workerMetricsPort?: number;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: traces are exported over OTLP/HTTP to its /v1/traces; unset: no tracing. */
  otelEndpoint?: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const sandboxPort = intFrom(env.SANDBOX_PORT, 3100);
  const dataDir = env.DATA_DIR ?? join(process.cwd(), '.data');
  return {
    apiPort: intFrom(env.PORT ?? env.API_PORT, 3000),
    apiHost: env.API_HOST || '127.0.0.1',
    publicApiUrl: publicUrlFrom(env.PUBLIC_API_URL, `http://127.0.0.1:${intFrom(env.PORT ?? env.API_PORT, 3000)}`),
    allowLoopbackHttp: env.ALLOW_LOOPBACK_HTTP === 'true',
    sandboxPort,
    sandboxHost: env.SANDBOX_HOST || '127.0.0.1',
    sandboxUrl: env.SANDBOX_URL ?? `http://127.0.0.1:${sandboxPort}`,
    sandboxDataDir: env.SANDBOX_DATA_DIR || join(dataDir, 'sandbox'),
    sandboxSettleMs: intFrom(env.SANDBOX_SETTLE_MS, 2000),
    sandboxHangMs: intFrom(env.SANDBOX_HANG_MS, 30_000),
    sandboxReturnMs: intFrom(env.SANDBOX_RETURN_MS, 10_000),
    sandboxLatencyMs: intFrom(env.SANDBOX_LATENCY_MS, 0),
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalPort: intFrom(env.TEMPORAL_PORT, 7233),
    temporalUiPort: intFrom(env.TEMPORAL_UI_PORT, 8233),
    temporalNamespace: env.TEMPORAL_NAMESPACE ?? 'default',
    temporalCliPath: env.TEMPORAL_CLI_PATH || undefined,
    temporalDatabases: {
      history: env.TEMPORAL_DATABASE || 'temporal',
      visibility: env.TEMPORAL_VISIBILITY_DATABASE || 'temporal_visibility',
    },
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize: intFrom(env.DATABASE_POOL_SIZE, 10),
    paymentConcurrency: intFrom(env.PAYMENT_CONCURRENCY, 100),
    webhookDatabasePoolSize: intFrom(env.WEBHOOK_DATABASE_POOL_SIZE, 2),
    workerMemoryMb: intFrom(env.WORKER_MEMORY_MB, 400),
    workerMaxCachedWorkflows: env.WORKER_MAX_CACHED_WORKFLOWS ? intFrom(env.WORKER_MAX_CACHED_WORKFLOWS, 0) : undefined,
    embeddedDbPort: intFrom(env.EMBEDDED_DB_PORT, 5433),
    dataDir,
    cacheDir: env.PAYMENT_SCHEDULER_CACHE ?? join(homedir(), '.cache', 'payment-scheduler'),
    logLevel: env.LOG_LEVEL ?? 'info',
    logFormat: env.LOG_FORMAT === 'json' || env.LOG_FORMAT === 'pretty' ? env.LOG_FORMAT : undefined,
    orphanOrderGraceMs: intFrom(env.ORPHAN_ORDER_GRACE_MS, 30_000),
    masterKey: env.MASTER_KEY || undefined,
    masterKeyPrevious: (env.MASTER_KEY_PREVIOUS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
    rateLimitPerMinute: intFrom(env.RATE_LIMIT_PER_MINUTE, 600),
    rateLimitNamespace: env.RATE_LIMIT_NAMESPACE || 'api',
    paymentLinkTtlSeconds: intFrom(env.PAYMENT_LINK_TTL_SECONDS, 7 * 24 * 3600),
    payoutLinkTtlSeconds: intFrom(env.PAYOUT_LINK_TTL_SECONDS, 48 * 3600),
    bodyLimit: env.BODY_LIMIT ?? '1mb',
    batchBodyLimit: env.BATCH_BODY_LIMIT ?? '16mb',
    accessTokenTtlSeconds: intFrom(env.ACCESS_TOKEN_TTL_SECONDS, 15 * 60),
    exportStallSeconds: intFrom(env.EXPORT_STALL_SECONDS, 60),
    exportLockWaitSeconds: intFrom(env.EXPORT_LOCK_WAIT_SECONDS, 60),
    searchTimeoutSeconds: intFrom(env.SEARCH_TIMEOUT_SECONDS, 15),
    trustProxy: trustProxyFrom(env.TRUST_PROXY),
    metricsToken: env.METRICS_TOKEN || undefined,
    workerMetricsPort: env.WORKER_METRICS_PORT ? intFrom(env.WORKER_METRICS_PORT, 0) : undefined,
    otelEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
  };
}

/** The API's own settings, from a config (in tests: `apiSettings(loadConfig({}))` with overrides). */
export function apiSettings(config: Config) {
  return {
    bodyLimit: config.bodyLimit,
    batchBodyLimit: config.batchBodyLimit,
    rateLimitPerMinute: config.rateLimitPerMinute,
    rateLimitNamespace: config.rateLimitNamespace,
    publicApiUrl: config.publicApiUrl,
    paymentLinkTtlSeconds: config.paymentLinkTtlSeconds,
    payoutLinkTtlSeconds: config.payoutLinkTtlSeconds,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    exportStallSeconds: config.exportStallSeconds,
    exportLockWaitSeconds: config.exportLockWaitSeconds,
    searchTimeoutSeconds: config.searchTimeoutSeconds,
    trustProxy: config.trustProxy,
    allowLoopbackHttp: config.allowLoopbackHttp,
    metricsToken: config.metricsToken,
  };
}
export type ApiSettings = ReturnType<typeof apiSettings>;

function intFrom(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`expected a non-negative integer, got "${value}"`);
  return parsed;
}

/**
 * The API's public address, without a trailing slash. Refused at start unless absolute http(s):
 * providers call back to it and customers open links under it, so one without a scheme made broken
 * links, and stopped the API at its first use as a URL.
 */
function publicUrlFrom(value: string | undefined, fallback: string): string {
  if (value === undefined || value === '') return fallback;
  const url = URL.canParse(value) ? new URL(value) : undefined;
  const plain = url && !url.username && !url.password && !url.search && !url.hash;
  if (!url || !plain || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.host) {
    throw new Error(
      `PUBLIC_API_URL must be an absolute http(s) address with no credentials, query or fragment, such as https://payments.example.com, got "${value}"`,
    );
  }
  // As parsed (`http:example.com` is `http://example.com`), so that every link made from it is too.
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function trustProxyFrom(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
