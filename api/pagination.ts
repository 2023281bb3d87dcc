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
