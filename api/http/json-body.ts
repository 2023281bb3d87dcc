import type { RequestHandler } from 'express';
import { ApiError, formatPath } from './problem.js';

/** Every request body is JSON: another content type would otherwise reach the handlers as "no body". */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    throw new ApiError(415, 'unsupported_media_type', 'send the request body as application/json');
  }
  next();
};

/**
 * Refuses strings PostgreSQL cannot store (a NUL character, or a lone UTF-16 surrogate, which
 * jsonb refuses): whatever the API accepts, the database must take, or the caller would get a 500.
 */
export const refuseUnstorableStrings: RequestHandler = (req, _res, next) => {
  const path = findUnstorable(req.body, []);
  if (path) {
    throw new ApiError(400, 'validation_failed', '1 field failed validation', [
      {
        path: path.length ? formatPath(path) : 'body',
        code: 'invalid_character',
        message: 'holds a NUL character or an unpaired surrogate',
      },
    ]);
  }
  next();
};

function findUnstorable(value: unknown, path: (string | number)[]): (string | number)[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') || !value.isWellFormed() ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], [...path, i]);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const found = findUnstorable(key, [...path, key]) ?? findUnstorable(child, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}
