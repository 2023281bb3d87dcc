import type { RequestHandler } from 'express';
import { ApiError } from './problem.js';

/** Every request body is JSON: another content type would otherwise reach the handlers as "no body". */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    throw new ApiError(415, 'unsupported_media_type', 'send the request body as application/json');
  }
  next();
};
