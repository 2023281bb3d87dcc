import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The database's clock, now (not its transaction's start): one clock for every API host, for
 * moments that hosts compare with each other's (a link issued on one, revoked on another).
 */
export async function databaseNow(em: EntityManager): Promise<Date> {
  const [row] = await em.getConnection().execute<{ at: Date }[]>('select clock_timestamp() as at');
  return new Date(row.at);
}
