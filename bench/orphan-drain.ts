// Orphaned orders (stored, their workflow never started: the API stopped between the insert and the
// start, or Temporal was away) drained by the worker's reconciler: its starts one at a time against
// several under way at once, in the same run, on the same Temporal server, with no worker polling.
// Prints each's start rate and the time a backlog takes to drain as the worker runs rounds (every
// 5 s): before, a round took 100 orders one at a time; now up to 10 pages of 100, 8 starts at once.
//   npm run bench -- orphan-drain --orders 1000
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { PaymentOrder, Tenant } from '../db/entities/index.js';
import { createLogger } from '../logger.js';
import { buildOrder } from '../orders/order-plans.js';
import { OrphanOrderReconciler } from '../orders/reconciler.js';
import { resolveInstructions } from '../orders/scheme-resolution.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { monthlyPremiums } from './support/order-burst.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000' },
    instructions: { type: 'string', default: '12' },
  },
});
const orders = Number(values.orders);
const instructionsPerOrder = Number(values.instructions);
/** The worker's period between reconciler rounds (worker/run-worker.ts). */
const ROUND_PERIOD_MS = 5_000;

const config = loadConfig();
const stack = await startLocalStack(config, {}, { worker: false });
const { tenant } = await stack.newTenant('bench');
const quiet = createLogger('reconciler', 'silent');

/** Orders stored as the API stores them, never started. */
async function storeOrphans(prefix: string, count: number): Promise<void> {
  const em = stack.orm.em.fork();
  const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
  for (let i = 0; i < count; i++) {
    const body = monthlyPremiums(`${prefix}-${i}`, instructionsPerOrder);
    buildOrder(em, tenantRow, body, await resolveInstructions(em, tenant.tenantId, body.instructions));
    if (i % 100 === 99) await em.flush();
  }
  await em.flush();
}

interface Drain {
  startsPerSecond: number;
  /** Rounds it took, and the time to drain counting the worker's period between them. */
  rounds: number;
  drainSeconds: number;
}

async function drain(expected: number, startsAtOnce: number, pagesPerRound: number): Promise<Drain> {
  const reconciler = new OrphanOrderReconciler({
    orm: stack.orm,
    client: stack.temporal,
    logger: quiet,
    graceMs: 0,
    startsAtOnce,
    pagesPerRound,
  });
  let rounds = 0;
  let busyMs = 0;
  let started = 0;
  for (;;) {
    const t0 = performance.now();
    const inRound = await reconciler.runOnce();
    if (inRound === 0) break;
    busyMs += performance.now() - t0;
    started += inRound;
    rounds += 1;
  }
  const left = await stack.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, workflowStartedAt: null });
  if (left > 0 || started !== expected) throw new Error(`${left} orders left unstarted, ${started} started`);
  return {
    startsPerSecond: started / (busyMs / 1000),
    rounds,
    drainSeconds: (busyMs + (rounds - 1) * ROUND_PERIOD_MS) / 1000,
  };
}

// Warm-up: connections and the JIT.
await storeOrphans('warm', 20);
await drain(20, 8, 10);

await storeOrphans('before', orders);
const before = await drain(orders, 1, 1);
await storeOrphans('now', orders);
const now = await drain(orders, 8, 10);

const line = (name: string, d: Drain) =>
  `  ${name.padEnd(44)} ${d.startsPerSecond.toFixed(1).padStart(7)} starts/s   ${String(d.rounds).padStart(3)} rounds   drained in ${d.drainSeconds.toFixed(1)} s`;
console.log(
  `orphan drain: ${orders} orders x ${instructionsPerOrder} instructions, no worker polling; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
console.log(line('one start at a time, 100 a round (before)', before));
console.log(line('8 at once, up to 1,000 a round (now)', now));
console.log(
  `  ratio now / before: starts/s ${(now.startsPerSecond / before.startsPerSecond).toFixed(2)}, drain time ${(now.drainSeconds / before.drainSeconds).toFixed(2)}`,
);
await stack.stop();
