import type { EntityManager, EntityName, FilterQuery } from '@mikro-orm/postgresql';
import { isScheduleYear } from '../../domain/dates.js';
import { UUID } from '../../domain/uuid.js';
import { ApiError } from './problem.js';

/** Where a page ended: the last item's sort key (its date) and id. */
export interface Cursor {
  at: string;
  id: string;
}

/** Cursors are opaque to callers: base64url of the last item's sort key. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** The cursor's key, checked to be one this API could have issued, so nothing odd reaches SQL. */
export function decodeCursor(value: string): Cursor {
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<
      Cursor & { createdAt: string }
    >;
    // Cursors issued before pages could sort by other dates named their key createdAt.
    const cursor = { at: parsed.at ?? parsed.createdAt, id: parsed.id };
    if (
      typeof cursor.at === 'string' &&
      typeof cursor.id === 'string' &&
      UUID.test(cursor.id) &&
      !Number.isNaN(Date.parse(cursor.at)) &&
      isScheduleYear(new Date(cursor.at)) &&
      new Date(cursor.at).toISOString() === cursor.at
    ) {
      return cursor as Cursor;
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

/** A date property of T: what a page may be ordered by. */
export type DateKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends Date ? K : never }[keyof T] & string;

/**
 * One page of `entity` rows matching `where`, latest first by `sortBy` (createdAt unless told), with
 * a keyset cursor on (sortBy, idField) so pages stay stable while rows are added. The cursor is a row
 * comparison, `(created_at, id) < (?, ?)`, which PostgreSQL reads as one range of an index on
 * (…filters, created_at, id): every list has such an index, so a page costs its own rows only.
 */
export async function findPage<T extends object>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  page: PageQuery,
  idField: keyof T & string,
  sortBy: DateKey<T> = 'createdAt' as DateKey<T>,
): Promise<Page<T>> {
  const rows = (await pageQuery(em, entity, where, page, idField, sortBy).getResult()) as T[];
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor:
      rows.length > page.limit
        ? encodeCursor({ at: (last[sortBy] as Date).toISOString(), id: String(last[idField]) })
        : null,
  };
}

/** The query of one page (one row more than the limit, to know whether another page follows). */
export function pageQuery<T extends object>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  { limit, cursor }: PageQuery,
  idField: keyof T & string,
  sortBy: DateKey<T> = 'createdAt' as DateKey<T>,
) {
  const qb = em.createQueryBuilder(entity).select('*').where(where);
  if (cursor) {
    const after = decodeCursor(cursor);
    const meta = em.getMetadata().get(qb.mainAlias.entityName);
    const column = (property: string) => `${qb.alias}.${meta.properties[property].fieldNames[0]}`;
    qb.andWhere(`(${column(sortBy)}, ${column(idField)}) < (?, ?)`, [new Date(after.at), after.id]);
  }
  return qb.orderBy({ [sortBy]: 'desc', [idField]: 'desc' }).limit(limit + 1);
}
