import pg from 'pg';
import { lane } from './lanes.js';

/** A row (or a table) held locked by a transaction of the test's, and a look at who waits on it. */
export interface RowHold {
  /** Statements waiting on a lock, those whose text matches `queryLike` (ILIKE) when given. */
  waiting(queryLike?: string): Promise<number>;
  /** When each of those statements began, by the database's clock. */
  waitingSince(queryLike?: string): Promise<Date[]>;
  /** Ends the holding transaction (rolled back) and both connections. */
  release(): Promise<void>;
}

/** A table held locked, whose holder may change rows before it lets go. */
export interface TableHold extends RowHold {
  /** A statement in the holding transaction. */
  query(sql: string, params?: unknown[]): Promise<void>;
  /** Ends the holding transaction, its changes committed, and both connections. */
  commit(): Promise<void>;
}

/**
 * Locks the rows of `table` that `where` selects until `release`. The waits are read on a second
 * connection: inside the holder's transaction, pg_stat_activity would show what it was at its first
 * look for as long as the transaction lasts.
 */
export function holdRow(
  table: string,
  where: string,
  params: unknown[],
  lock: 'for update' | 'for no key update' = 'for update',
): Promise<RowHold> {
  return hold(lane().databaseUrl, `select id from ${table} where ${where} ${lock}`, params);
}

/** A transaction of the test's own, holding what its statements lock (a row it inserts) until it ends. */
export function holdTransaction(): Promise<TableHold> {
  return hold(lane().databaseUrl, 'select 1', []);
}

/** Locks `table` of the database at `databaseUrl` whole (ACCESS EXCLUSIVE): even a read of it waits. */
export function holdTable(databaseUrl: string, table: string): Promise<TableHold> {
  return hold(databaseUrl, `lock table ${table} in access exclusive mode`, []);
}

async function hold(databaseUrl: string, lockStatement: string, params: unknown[]): Promise<TableHold> {
  const [holder, observer] = [new pg.Client(databaseUrl), new pg.Client(databaseUrl)];
  await Promise.all([holder.connect(), observer.connect()]);
  await holder.query('begin');
  await holder.query(lockStatement, params);
  let ended = false;
  const end = async (how: 'commit' | 'rollback') => {
    if (ended) return;
    ended = true;
    try {
      await holder.query(how);
    } finally {
      await Promise.all([holder.end(), observer.end()]);
    }
  };
  const waitingSince = async (queryLike?: string) => {
    const { rows } = await observer.query<{ since: Date }>(
      `select query_start as since from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and state = 'active'
          and ($1::text is null or query ilike $1)`,
      [queryLike ?? null],
    );
    return rows.map((row) => row.since);
  };
  return {
    waitingSince,
    waiting: async (queryLike) => (await waitingSince(queryLike)).length,
    async query(sql, queryParams) {
      await holder.query(sql, queryParams);
    },
    commit: () => end('commit'),
    release: () => end('rollback'),
  };
}
