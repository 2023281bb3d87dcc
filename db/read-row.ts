import type { EntityManager } from '@mikro-orm/postgresql';
import type { EntityClass } from '@mikro-orm/core';

/**
 * Some properties of one row, read with a plain select (column names from the entity's metadata)
 * rather than through the ORM's query builder and entity hydration: for the reads every request
 * makes (its key, its tenant), where those were most of the request's CPU. Values come as the
 * driver gives them, so only properties the driver already returns in their stored type (text,
 * integers, jsonb, timestamps) belong here; undefined when there is no such row.
 */
export async function readRow<T extends object, K extends keyof T & string>(
  em: EntityManager,
  entity: EntityClass<T>,
  where: Partial<Pick<T, keyof T & string>>,
  properties: readonly K[],
): Promise<Pick<T, K> | undefined> {
  const meta = em.getMetadata().get<T>(entity.name);
  const columnsOf = meta.properties as Record<string, { fieldNames: string[] }>;
  const column = (property: string) => columnsOf[property].fieldNames[0];
  const query = em
    .getKnex()
    .select(properties.map((property) => `${column(property)} as ${property}`))
    .from(meta.tableName)
    .where(Object.fromEntries(Object.entries(where).map(([property, value]) => [column(property), value])))
    .limit(1);
  const rows = await em.getConnection().execute<Pick<T, K>[]>(query, [], 'all', em.getTransactionContext());
  return rows[0];
}
