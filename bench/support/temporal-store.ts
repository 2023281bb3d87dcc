// What the Temporal server keeps in its own PostgreSQL (`npm run cluster`: its two databases on the
// application's server), read before and after a benchmark so that the capacity model's storage
// (ARCHITECTURE.md, "Capacity") can be checked against what a run actually stored.
import pg from 'pg';
import type { Config } from '../../config.js';

export interface TemporalStore {
  /** The histories' events as stored (`history_node`'s batches): what the model counts as history. */
  historyBytes: number;
  /** The persistence database on disk: histories, mutable state, timers and tasks, with indexes and free space. */
  persistenceBytes: number;
  /** The visibility database on disk, and of it the workflows' table's indexes. */
  visibilityBytes: number;
  visibilityIndexBytes: number;
  /** Workflows in visibility, and of them those a first task has upserted (`TemporalChangeVersion`): it is written after the task, asynchronously. */
  workflows: number;
  upserted: number;
}

/** The server's two databases, when it keeps them on the application's PostgreSQL (the cluster); else undefined. */
export async function readTemporalStore(config: Config): Promise<TemporalStore | undefined> {
  if (!config.databaseUrl || !config.temporalAddress) return undefined;
  const on = (name: string) => Object.assign(new URL(config.databaseUrl!), { pathname: `/${name}` }).toString();
  const persistence = new pg.Client(on(config.temporalDatabases.history));
  const visibility = new pg.Client(on(config.temporalDatabases.visibility));
  try {
    await persistence.connect();
    await visibility.connect();
    const history = await persistence.query<{ history: string; size: string }>(
      'select coalesce(sum(octet_length(data)), 0) as history, pg_database_size(current_database()) as size from history_node',
    );
    const seen = await visibility.query<{ size: string; indexes: string; workflows: string; upserted: string }>(
      `select pg_database_size(current_database()) as size, pg_indexes_size('executions_visibility') as indexes,
        count(*) as workflows, count(temporalchangeversion) as upserted from executions_visibility`,
    );
    return {
      historyBytes: Number(history.rows[0].history),
      persistenceBytes: Number(history.rows[0].size),
      visibilityBytes: Number(seen.rows[0].size),
      visibilityIndexBytes: Number(seen.rows[0].indexes),
      workflows: Number(seen.rows[0].workflows),
      upserted: Number(seen.rows[0].upserted),
    };
  } catch (err) {
    // Not the cluster's server (a dev server of its own, or databases elsewhere): nothing to read.
    console.log(`  (Temporal's databases not read: ${(err as Error).message})`);
    return undefined;
  } finally {
    await Promise.all([persistence.end(), visibility.end()]).catch(() => undefined);
  }
}

/**
 * The store once visibility shows `orders` more workflows than `before`, each upserted by its first
 * task (at most a minute): visibility is written after the history, asynchronously.
 */
export async function temporalStoreAfter(
  config: Config,
  before: TemporalStore,
  orders: number,
): Promise<TemporalStore | undefined> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const store = await readTemporalStore(config);
    if (!store || store.upserted - before.upserted >= orders || Date.now() > deadline) return store;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** What a run of `orders` orders added to the store, per order. */
export function describeStoreGrowth(before: TemporalStore, after: TemporalStore, orders: number): string[] {
  const kb = (bytes: number) => `${(bytes / orders / 1024).toFixed(1)} KB`;
  const history = after.historyBytes - before.historyBytes;
  const persistence = after.persistenceBytes - before.persistenceBytes;
  const visibility = after.visibilityBytes - before.visibilityBytes;
  const others = after.workflows - before.workflows - orders;
  return [
    ...(others === 0
      ? []
      : [`(visibility shows ${others} workflows more than the orders: the figures below count them in)`]),
    `Temporal's PostgreSQL, grown per order over ${orders}: histories ${kb(history)}; the persistence database ${kb(persistence)} (${(persistence / history).toFixed(2)}x the histories); visibility ${kb(visibility)} (its workflows' indexes ${kb(after.visibilityIndexBytes - before.visibilityIndexBytes)})`,
  ];
}
