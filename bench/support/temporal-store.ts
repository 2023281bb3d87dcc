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
    const seen = await visibility.query<{ size: string; indexes: string }>(
      `select pg_database_size(current_database()) as size, pg_indexes_size('executions_visibility') as indexes`,
    );
    return {
      historyBytes: Number(history.rows[0].history),
      persistenceBytes: Number(history.rows[0].size),
      visibilityBytes: Number(seen.rows[0].size),
      visibilityIndexBytes: Number(seen.rows[0].indexes),
    };
  } catch {
    // Not the cluster's server (a dev server of its own, or databases elsewhere): nothing to read.
    return undefined;
  } finally {
    await Promise.all([persistence.end(), visibility.end()]).catch(() => undefined);
  }
}

/** What a run added to the store, per workflow it started. */
export function describeStoreGrowth(before: TemporalStore, after: TemporalStore, workflows: number): string[] {
  const kb = (bytes: number) => `${(bytes / workflows / 1024).toFixed(1)} KB`;
  const history = after.historyBytes - before.historyBytes;
  const persistence = after.persistenceBytes - before.persistenceBytes;
  const visibility = after.visibilityBytes - before.visibilityBytes;
  return [
    `Temporal's PostgreSQL, grown per workflow over ${workflows}: histories ${kb(history)}; the persistence database ${kb(persistence)} (${(persistence / history).toFixed(2)}x the histories); visibility ${kb(visibility)} (its workflows' indexes ${kb(after.visibilityIndexBytes - before.visibilityIndexBytes)})`,
  ];
}
