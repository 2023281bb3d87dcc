import { homedir } from 'node:os';
import { join } from 'node:path';

/** Everything the processes read from the environment, with the defaults `npm start` runs on. */
export interface Config {
  apiPort: number;
  sandboxPort: number;
  sandboxUrl: string;
  /** Unset: `npm start` runs a Temporal dev server on temporalPort. */
  temporalAddress?: string;
  temporalPort: number;
  temporalUiPort: number;
  temporalNamespace: string;
  /** Unset: `npm start` serves an embedded PGlite database on embeddedDbPort. */
  databaseUrl?: string;
  embeddedDbPort: number;
  dataDir: string;
  cacheDir: string;
  logLevel: string;
  /** Orders older than this without a workflow are started by the reconciler. */
  orphanOrderGraceMs: number;
  /** Base64 of 32 bytes. Unset: `npm start` keeps one in DATA_DIR/master.key. */
  masterKey?: string;
  rateLimitPerMinute: number;
  bodyLimit: string;
  accessTokenTtlSeconds: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const sandboxPort = intFrom(env.SANDBOX_PORT, 3100);
  return {
    apiPort: intFrom(env.PORT ?? env.API_PORT, 3000),
    sandboxPort,
    sandboxUrl: env.SANDBOX_URL ?? `http://127.0.0.1:${sandboxPort}`,
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalPort: intFrom(env.TEMPORAL_PORT, 7233),
    temporalUiPort: intFrom(env.TEMPORAL_UI_PORT, 8233),
    temporalNamespace: env.TEMPORAL_NAMESPACE ?? 'default',
    databaseUrl: env.DATABASE_URL || undefined,
    embeddedDbPort: intFrom(env.EMBEDDED_DB_PORT, 5433),
    dataDir: env.DATA_DIR ?? join(process.cwd(), '.data'),
    cacheDir: env.PAYMENT_SCHEDULER_CACHE ?? join(homedir(), '.cache', 'payment-scheduler'),
    logLevel: env.LOG_LEVEL ?? 'info',
    orphanOrderGraceMs: intFrom(env.ORPHAN_ORDER_GRACE_MS, 30_000),
    masterKey: env.MASTER_KEY || undefined,
    rateLimitPerMinute: intFrom(env.RATE_LIMIT_PER_MINUTE, 600),
    bodyLimit: env.BODY_LIMIT ?? '1mb',
    accessTokenTtlSeconds: intFrom(env.ACCESS_TOKEN_TTL_SECONDS, 15 * 60),
  };
}

function intFrom(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`expected a non-negative integer, got "${value}"`);
  return parsed;
}
