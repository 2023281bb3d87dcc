import type { MikroORM } from '@mikro-orm/postgresql';
import type { RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import {
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
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

/** The largest share of the shared count a process takes at once. */
const MAX_LEASE = 100;
/** Keys whose leases a process keeps before it drops those that have ended. */
const MAX_KEYS_HELD = 10_000;

/**
 * Requests per minute per security key (per client address before authentication), counted in
 * PostgreSQL so that every API process shares the count. A process takes points from the shared
 * count a few at a time (a lease, see PointLeases) and spends them in memory, so most requests
 * cost no round trip. While the database cannot be reached, each process counts in memory alone
 * rather than refusing or failing the request: the request's own database work then answers 503.
 */
export function perKeyRateLimit(orm: MikroORM, options: RateLimitOptions): RequestHandler {
  const { limitPerMinute } = options;
  const leases = new PointLeases(
    new RateLimiterPostgres({
      storeClient: orm.em.getKnex(),
      storeType: 'knex',
      tableName: RATE_LIMIT_TABLE,
      tableCreated: true,
      keyPrefix: `${options.namespace}:${options.by}`,
      points: limitPerMinute,
      duration: 60,
      insuranceLimiter: new RateLimiterMemory({ points: limitPerMinute, duration: 60 }),
    }),
    limitPerMinute,
  );
  return (req, res, next) => {
    const principal = (res.locals as { principal?: { publicKey: string } }).principal;
    const key = options.by === 'key' && principal ? principal.publicKey : ipKeyGenerator(req.ip ?? 'unknown');
    leases.consume(key).then(
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

interface Lease {
  /** Points taken from the shared count and not yet spent here. */
  unspent: number;
  /** What the shared count had left when it was taken. */
  sharedRemaining: number;
  /** When the shared count's window (and with it the lease) ends. */
  endsAt: number;
}

/**
 * A key's points taken from the shared count a lease at a time: a hundredth of the limit (at most
 * MAX_LEASE), and never more than a tenth of what the count last had left, so that a small limit,
 * or one nearly spent, is counted point by point, exactly, across processes. Points leased and not
 * spent still count: near its limit a key may be refused up to a lease per process early, never
 * let through late. A lease the count cannot give is given back, and one point asked for instead.
 */
export class PointLeases {
  private readonly leases = new Map<string, Lease>();
  private readonly taking = new Map<string, Promise<void>>();

  constructor(
    private readonly shared: RateLimiterAbstract,
    private readonly limit: number,
  ) {}

  async consume(key: string): Promise<{ remainingPoints: number; msBeforeNext: number }> {
    for (;;) {
      const lease = this.leases.get(key);
      const now = Date.now();
      if (lease && lease.endsAt > now && lease.unspent > 0) {
        lease.unspent -= 1;
        return { remainingPoints: lease.sharedRemaining + lease.unspent, msBeforeNext: lease.endsAt - now };
      }
      // One lease taken at a time per key: requests arriving meanwhile spend it once it comes.
      const pending = this.taking.get(key) ?? this.take(key, lease);
      this.taking.set(key, pending);
      await pending.finally(() => this.taking.delete(key));
    }
  }

  private async take(key: string, last: Lease | undefined): Promise<void> {
    const stillKnown = last && last.endsAt > Date.now() ? last.sharedRemaining : this.limit;
    const size = Math.max(1, Math.min(Math.floor(this.limit / 100), MAX_LEASE, Math.floor(stillKnown / 10)));
    let taken: RateLimiterRes;
    try {
      taken = await this.shared.consume(key, size);
    } catch (refused) {
      if (!(refused instanceof RateLimiterRes) || size === 1) throw refused;
      await this.shared.reward(key, size);
      return this.take(key, { unspent: 0, sharedRemaining: 0, endsAt: Date.now() + refused.msBeforeNext });
    }
    if (this.leases.size >= MAX_KEYS_HELD) this.forgetEnded();
    this.leases.set(key, {
      unspent: size,
      sharedRemaining: taken.remainingPoints,
      endsAt: Date.now() + taken.msBeforeNext,
    });
  }

  /** Leases whose window has ended count for nothing: dropped, so that many keys (addresses) do not pile up. */
  private forgetEnded(): void {
    const now = Date.now();
    for (const [key, lease] of this.leases) if (lease.endsAt <= now) this.leases.delete(key);
  }
}
