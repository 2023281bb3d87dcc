// How a burst uses the application's database pool: the statements it sends, the connections it
// holds, and how often a caller waits for one. Sampled, so a wait shorter than a sample may be missed.
import type { MikroORM } from '@mikro-orm/postgresql';

export interface PoolUse {
  /** Every statement sent through the pool, BEGIN and COMMIT included. */
  statements: number;
  size: number;
  meanInUse: number;
  /** The share of samples in which a caller was waiting for a connection. */
  waitingShare: number;
  maxWaiting: number;
}

interface Pool {
  max: number;
  numUsed(): number;
  numPendingAcquires(): number;
}

export function watchPool(orm: MikroORM, everyMs = 20): { stop(): PoolUse } {
  const knex = orm.em.getKnex();
  const pool = (knex.client as { pool: Pool }).pool;
  let statements = 0;
  const count = () => void statements++;
  knex.on('query', count);
  const inUse: number[] = [];
  const waiting: number[] = [];
  const sampling = setInterval(() => {
    inUse.push(pool.numUsed());
    waiting.push(pool.numPendingAcquires());
  }, everyMs);
  return {
    stop() {
      clearInterval(sampling);
      knex.off('query', count);
      const samples = Math.max(1, inUse.length);
      return {
        statements,
        size: pool.max,
        meanInUse: inUse.reduce((a, b) => a + b, 0) / samples,
        waitingShare: waiting.filter((n) => n > 0).length / samples,
        maxWaiting: Math.max(0, ...waiting),
      };
    },
  };
}

export function describePoolUse(use: PoolUse, instructions: number): string {
  return `${(use.statements / instructions).toFixed(1)} statements an instruction; ${use.meanInUse.toFixed(2)} of ${use.size} connections in use on average, a caller waiting for one in ${(use.waitingShare * 100).toFixed(0)}% of samples (at most ${use.maxWaiting})`;
}
