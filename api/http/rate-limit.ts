import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { ApiError } from './problem.js';

/**
 * Requests per minute per security key (per client address before authentication). Counts are
 * kept in this process: with N API processes a key gets up to N times the limit.
 */
export function perKeyRateLimit(limitPerMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: limitPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req, res) => res.locals.principal?.publicKey ?? ipKeyGenerator(req.ip ?? 'unknown'),
    handler: (req, _res, next) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + 60_000) - Date.now()) / 1000));
      next(
        new ApiError(429, 'rate_limited', `more than ${limitPerMinute} requests a minute; retry after ${retryAfter} s`, undefined, {
          'retry-after': String(retryAfter),
        }),
      );
    },
  });
}
