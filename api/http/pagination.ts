import type { EntityManager, EntityName, FilterQuery } from '@mikro-orm/postgresql';
import { isScheduleYear } from '../../domain/dates.js';
import { ApiError } from './problem.js';

export interface Cursor {
  createdAt: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Cursors are opaque to callers: base64url of the last item's sort key. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** The cursor's key, checked to be one this API could have issued, so nothing odd reaches SQL. */
export function decodeCursor(value: string): Cursor {
  try {
    const cursor = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Cursor;
    if (
      typeof cursor.createdAt === 'string' &&
      typeof cursor.id === 'string' &&
      UUID.test(cursor.id) &&
      !Number.isNaN(Date.parse(cursor.createdAt)) &&
      isScheduleYear(new Date(cursor.createdAt)) &&
      new Date(cursor.createdAt).toISOString() === cursor.createdAt
    ) {
      return cursor;
    }
  } catch {
    // fall through to the error below
  }
  throw new ApiError(400, 'validation_failed', 'cursor is not one this API issued', [
    { path: 'query.cursor', code: 'invalid_cursor', message: 'use nextCursor from a previous page' },
  ]);
}

export interface PageQuery {
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * One page of `entity` rows matching `where`, newest first, with a keyset cursor on
 * (createdAt, idField) so pages stay stable while rows are added. The cursor is a row comparison,
 * `(created_at, id) < (?, ?)`, which PostgreSQL reads as one range of an index on
 * (…filters, created_at, id): every list has such an index, so a page costs its own rows only.
 */
export async function findPage<T extends { createdAt: Date }>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  page: PageQuery,
  idField: keyof T & string,
): Promise<Page<T>> {
  const rows = (await pageQuery(em, entity, where, page, idField).getResult()) as T[];
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor:
      rows.length > page.limit
        ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: String(last[idField]) })
        : null,
  };
}

/** The query of one page (one row more than the limit, to know whether another page follows). */
export function pageQuery<T extends { createdAt: Date }>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  { limit, cursor }: PageQuery,
  idField: keyof T & string,
) {
  const qb = em.createQueryBuilder(entity).select('*').where(where);
  if (cursor) {
    const after = decodeCursor(cursor);
    const meta = em.getMetadata().get(qb.mainAlias.entityName);
    const column = (property: string) => `${qb.alias}.${meta.properties[property].fieldNames[0]}`;
    qb.andWhere(`(${column('createdAt')}, ${column(idField)}) < (?, ?)`, [new Date(after.createdAt), after.id]);
  }
  return qb.orderBy({ createdAt: 'desc', [idField]: 'desc' }).limit(limit + 1);
}
