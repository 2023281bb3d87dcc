import pg from 'pg';
import { lane } from './lanes.js';

/** A row held locked by a transaction of the test's, and a look at who waits on it. */
export interface RowHold {
  /** Statements waiting on a lock, those whose text matches `queryLike` (ILIKE) when given. */
  waiting(queryLike?: string): Promise<number>;
  /** Ends the holding transaction (rolled back) and both connections. */
  release(): Promise<void>;
}

/**
 * Locks the rows of `table` that `where` selects until `release`. The waits are read on a second
 * connection: inside the holder's transaction, pg_stat_activity would show what it was at its first
 * look for as long as the transaction lasts.
 */
export async function holdRow(
  table: string,
  where: string,
  params: unknown[],
  lock: 'for update' | 'for no key update' = 'for update',
): Promise<RowHold> {
  const [holder, observer] = [new pg.Client(lane().databaseUrl), new pg.Client(lane().databaseUrl)];
  await Promise.all([holder.connect(), observer.connect()]);
  await holder.query('begin');
  await holder.query(`select id from ${table} where ${where} ${lock}`, params);
  let released = false;
  return {
    async waiting(queryLike) {
      const { rows } = await observer.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and state = 'active'
          and ($1::text is null or query ilike $1)`,
        [queryLike ?? null],
      );
      return rows[0].n;
    },
    async release() {
      if (released) return;
      released = true;
      try {
        await holder.query('rollback');
      } finally {
        await Promise.all([holder.end(), observer.end()]);
      }
    },
  };
}
