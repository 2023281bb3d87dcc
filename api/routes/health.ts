import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { Router } from 'express';

const CHECK_TIMEOUT_MS = 2_000;

/** /healthz: the process answers. /readyz: it can reach the database and Temporal, so it can take orders. */
export function healthRouter(orm: MikroORM, temporal: Client): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const [database, temporalServer] = await Promise.all([
      check(() => orm.em.fork().getConnection().execute('select 1')),
      check(() => temporal.workflowService.getSystemInfo({})),
    ]);
    const ready = database === 'ok' && temporalServer === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: { database, temporal: temporalServer } });
  });
  return router;
}

async function check(probe: () => Promise<unknown>): Promise<'ok' | 'unreachable'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch {
    return 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}
