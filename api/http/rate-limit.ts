import type { MikroORM } from '@mikro-orm/postgresql';
import type { RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { ApiError } from './problem.js';

/** Created by a migration: rate-limiter-flexible's table layout (key, points, expire in ms). */
export const RATE_LIMIT_TABLE = 'rate_limit_counter';

export interface RateLimitOptions {
  limitPerMinute: number;
  /**
   * Separates counters: every API process of one deployment uses the same namespace, so that a
   * key's limit holds across them (tests give each API of theirs its own).
   */
  namespace: string;
  /** What is counted: requests per security key, or per client address before sign-in. */
  by: 'key' | 'address';
}

/**
 * Requests per minute per security key (per client address before authentication), counted in
 * PostgreSQL so that every API process shares the count. While the database cannot be reached,
 * each process counts in memory alone rather than refusing or failing the request: the request's
 * own database work then answers 503.
 */
export function perKeyRateLimit(orm: MikroORM, options: RateLimitOptions): RequestHandler {
  const { limitPerMinute } = options;
  const limiter = new RateLimiterPostgres({
    storeClient: orm.em.getKnex(),
    storeType: 'knex',
    tableName: RATE_LIMIT_TABLE,
    tableCreated: true,
    keyPrefix: `${options.namespace}:${options.by}`,
    points: limitPerMinute,
    duration: 60,
    insuranceLimiter: new RateLimiterMemory({ points: limitPerMinute, duration: 60 }),
  });
  return (req, res, next) => {
    const principal = (res.locals as { principal?: { publicKey: string } }).principal;
    const key = options.by === 'key' && principal ? principal.publicKey : ipKeyGenerator(req.ip ?? 'unknown');
    limiter.consume(key).then(
      (state) => {
        res.setHeader('ratelimit-policy', `"per-minute";q=${limitPerMinute};w=60`);
        res.setHeader('ratelimit', `"per-minute";r=${state.remainingPoints};t=${Math.ceil(state.msBeforeNext / 1000)}`);
        next();
      },
      (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) return next(rejection);
        const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        next(
          new ApiError(
            429,
            'rate_limited',
            `more than ${limitPerMinute} requests a minute; retry after ${retryAfter} s`,
            undefined,
            {
              'retry-after': String(retryAfter),
            },
          ),
        );
      },
    );
  };
}
