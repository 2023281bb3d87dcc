import { defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ALL_ENTITIES } from './entities/index.js';
import { MIGRATIONS } from './migrations/index.js';
import { fileURLToPath } from 'node:url';

export interface DatabaseOptions {
  url: string;
  /** Connections at most. The embedded database (PGlite over a socket) serves one statement at a time: one. */
  poolSize: number;
  debug?: boolean;
  /** The driver's warnings (a connection lost, say); printed to stderr unless given. */
  onWarning?: (message: string) => void;
  /** How long a query waits for a connection (default CONNECTION_ACQUIRE_TIMEOUT_MS). */
  acquireTimeoutMs?: number;
}

/**
 * How long a query waits for a free connection before failing: well inside the activities' 30 s
 * timeout, so a starved activity fails and is retried instead of timing out with no cause named.
 */
export const CONNECTION_ACQUIRE_TIMEOUT_MS = 10_000;

/**
 * How long a pooled connection is idle before the kernel probes its peer (TCP keep-alive; Node then
 * probes each second, ten times). A database gone without a FIN or RST (a silent network drop, a
 * host lost) fails what waits on it about 20 s later, instead of never: a query waiting for rows
 * sends nothing, so nothing else would notice.
 */
export const CONNECTION_KEEPALIVE_IDLE_MS = 10_000;

export function ormConfig({
  url,
  poolSize,
  debug = false,
  onWarning = (message) => console.warn(message),
  acquireTimeoutMs = CONNECTION_ACQUIRE_TIMEOUT_MS,
}: DatabaseOptions): Options {
  return defineConfig({
    clientUrl: url,
    entities: ALL_ENTITIES,
    extensions: [Migrator],
    pool: { min: 0, max: poolSize },
    driverOptions: {
      acquireConnectionTimeout: acquireTimeoutMs,
      log: { warn: onWarning },
      connection: { keepAlive: true, keepAliveInitialDelayMillis: CONNECTION_KEEPALIVE_IDLE_MS },
    },
    debug,
    // Entities are EntitySchema definitions: no decorators or reflection needed.
    discovery: { warnWhenNoEntities: true },
    migrations: {
      migrationsList: MIGRATIONS,
      // Where `npm run migration:create` writes new migrations.
      path: fileURLToPath(new URL('./migrations', import.meta.url)),
      // Callers report what ran; the migrator's own lines would go to stdout (and spoil `bootstrap --json`).
      silent: true,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    forceUtcTimezone: true,
  });
}
