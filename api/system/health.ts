import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import { withinTime } from '../../domain/time-limit.js';

const CHECK_TIMEOUT_MS = 2_000;
/** /readyz needs no credentials: its answer is kept this long, so a flood of probes is not a flood of queries. */
const READINESS_CACHE_MS = 1_500;

interface Readiness {
  ready: boolean;
  checks: { database: 'ok' | 'unreachable'; temporal: 'ok' | 'unreachable' };
}

/** /healthz: the process answers. /readyz: it can reach the database and Temporal, so it can take orders. */
export function healthRouter(orm: MikroORM, temporal: Client): Router {
  const router = Router();
  let cached: { at: number; readiness: Promise<Readiness> } | undefined;

  async function probe(): Promise<Readiness> {
    const [database, temporalServer] = await Promise.all([
      check(() => orm.em.fork().getConnection().execute('select 1')),
      check(() => temporal.workflowService.getSystemInfo({})),
    ]);
    return { ready: database === 'ok' && temporalServer === 'ok', checks: { database, temporal: temporalServer } };
  }

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    // Concurrent probes share one check in flight, and later ones its answer for a moment.
    if (!cached || Date.now() - cached.at > READINESS_CACHE_MS) cached = { at: Date.now(), readiness: probe() };
    const { ready, checks } = await cached.readiness;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  return router;
}

async function check(probe: () => Promise<unknown>): Promise<'ok' | 'unreachable'> {
  try {
    await withinTime(probe(), CHECK_TIMEOUT_MS, () => new Error('timeout'));
    return 'ok';
  } catch {
    return 'unreachable';
  }
}
