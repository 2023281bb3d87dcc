import type { MikroORM } from '@mikro-orm/postgresql';

/**
 * Deletes the rows of `table` where `condition` holds (its `?` bound to `params`), `batch` at a time
 * by their ctid, so that each delete stays short: it never holds many locks or a long transaction.
 * Returns how many it deleted.
 */
export async function deleteInBatches(
  orm: MikroORM,
  table: string,
  condition: string,
  params: unknown[] = [],
  batch = 1_000,
): Promise<number> {
  const connection = orm.em.getConnection();
  let deleted = 0;
  for (;;) {
    const rows = await connection.execute(
      `delete from ${table} where ctid in (select ctid from ${table} where ${condition} limit ${batch}) returning 1`,
      params,
    );
    deleted += rows.length;
    if (rows.length < batch) return deleted;
  }
}
