import type { EntityManager, EntityName, FilterQuery, Loaded } from '@mikro-orm/postgresql';
import { ApiError } from './problem.js';

export interface Cursor {
  createdAt: string;
  id: string;
}

/** Cursors are opaque to callers: base64url of the last item's sort key. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(value: string): Cursor {
  try {
    const cursor = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Cursor;
    if (typeof cursor.createdAt === 'string' && typeof cursor.id === 'string' && !Number.isNaN(Date.parse(cursor.createdAt))) {
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

/**
 * One page of `entity` rows matching `where`, newest first, with a keyset cursor on
 * (createdAt, idField) so pages stay stable while rows are added.
 */
export async function findPage<T extends { createdAt: Date }, P extends string = never>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  { limit, cursor }: PageQuery,
  idField: keyof T & string,
  populate?: readonly P[],
): Promise<{ items: Loaded<T, P>[]; nextCursor: string | null }> {
  const conditions: FilterQuery<T>[] = [where];
  if (cursor) {
    const after = decodeCursor(cursor);
    const createdAt = new Date(after.createdAt);
    conditions.push({ $or: [{ createdAt: { $lt: createdAt } }, { createdAt, [idField]: { $lt: after.id } }] } as FilterQuery<T>);
  }
  const rows = await em.find(entity, { $and: conditions } as FilterQuery<T>, {
    populate: populate as never,
    orderBy: { createdAt: 'desc', [idField]: 'desc' } as never,
    limit: limit + 1,
  });
  const items = rows.slice(0, limit) as Loaded<T, P>[];
  const last = items[items.length - 1];
  return {
    items,
    nextCursor: rows.length > limit ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: String(last[idField]) }) : null,
  };
}
