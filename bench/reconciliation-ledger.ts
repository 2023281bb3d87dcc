// A reconciliation run against a provider's ledger of many payments: the live heap at its peak
// while the run reads, stages and compares them, next to the same run over a small ledger and to the
// heap that only holding the ledger takes (what a run did before), measured in the same process.
// Payments wait in the database while a run lasts (ARCHITECTURE.md, "Reconciliation"), so the peak
// should not grow with the ledger. The ledger is made up page by page by a connector standing in for
// the provider (the sandbox keeps a few hundred payments at most); none of its payments is ours, and
// those of the period are declined, so the run finds nothing and pages through every one of them.
// Then the same ledger with the period's payments settled: every one a difference (`extra`), the run
// at its cap (the first 1,000 recorded and told, the rest counted), its end timed apart: the items,
// the events and their deliveries to one webhook endpoint in one transaction, then the deliveries'
// workflows started (no worker runs them here: use a dev server of its own, or reset the server);
// the endpoint is deleted with its deliveries at the end.
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- reconciliation-ledger --payments 300000
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import got from 'got';
import { pino } from 'pino';
import { createAppRegistry } from '../apps/app-registry.js';
import type { AppConnector } from '../apps/app-connector.js';
import type { ProviderPayment } from '../apps/provider-ledger.js';
import { loadConfig } from '../config.js';
import { SecretBox } from '../db/secret-box.js';
import { Reconciliation } from '../reconciliation/reconciliation.js';
import { startLocalStack } from '../scripts/local-stack.js';

const { values } = parseArgs({ options: { payments: { type: 'string', default: '300000' } } });
const many = Number(values.payments);
const few = 1_000;
/** The most a ledger page may hold (apps/provider-ledger.ts). */
const PAGE = 1_000;

// Garbage is not what a heap limit refuses: each sample collects first and reads what is live.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;
const liveHeap = () => {
  collectGarbage();
  return process.memoryUsage().heapUsed;
};

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 }, { worker: false });
const { tenant, client } = await stack.newTenant('bench');
const sandbox = createAppRegistry(got, {
  sandboxUrl: stack.sandboxUrl,
  callbackBaseUrl: stack.api.url,
  outboundUrls: { allowLoopbackHttp: true },
}).get('SANDBOX_CARD')!;

/**
 * A ledger of `size` payments spread over the period asked for: the last tenth in the period itself,
 * declined (nothing to say of them), or settled (each a difference).
 */
function madeUpLedger(size: number, run: string, periodStatus: 'DECLINED' | 'SETTLED' = 'DECLINED'): AppConnector {
  return {
    ...sandbox,
    ledger: ({ from, to }, cursor) => {
      const start = Number(cursor ?? 0);
      const items: ProviderPayment[] = [];
      for (let i = start; i < Math.min(size, start + PAGE); i++) {
        const inPeriod = i >= size * 0.9;
        items.push({
          providerRef: `led_${run}_${i.toString(36).padStart(6, '0')}`,
          direction: 'DEBIT',
          amountMinor: String(1000 + (i % 5000)),
          currency: 'EUR',
          status: inPeriod ? periodStatus : 'SETTLED',
          createdAt: new Date(
            inPeriod ? to.getTime() - 1000 - (i % 1000) : from.getTime() + (i % 86_400) * 1000,
          ).toISOString(),
        });
      }
      return Promise.resolve({ items, nextCursor: start + PAGE < size ? String(start + PAGE) : null });
    },
  };
}

interface Measured {
  peakMb: number;
  seconds: number;
  compared: number;
  mismatches: number;
  recorded: number;
  /** From the run's end stamped to its return: its closing transaction and its deliveries' starts. */
  endSeconds: number;
  /** The run's own account of its end (its log line): how long each part took, and the deliveries it started. */
  ended: RunEnded;
}

interface RunEnded {
  deliveries: { written: number; started: number };
  endMs: { closing: number; deletingEntries: number; startingDeliveries: number };
}

async function measuredRun(size: number, periodStatus: 'DECLINED' | 'SETTLED' = 'DECLINED'): Promise<Measured> {
  let ended: RunEnded | undefined;
  // The run's log, read for its line at the end.
  const readEnd = (line: string) => {
    const entry = JSON.parse(line) as RunEnded & { msg: string };
    if (entry.msg === 'reconciliation run ended') ended = entry;
  };
  const reconciliation = new Reconciliation({
    orm: stack.orm,
    apps: new Map([['SANDBOX_CARD', madeUpLedger(size, `${size}${periodStatus}`, periodStatus)]]),
    secretBox: SecretBox.fromMasterKeys(stack.masterKeys),
    temporal: stack.temporal,
    logger: pino({ level: 'info' }, { write: readEnd }),
  });
  const before = liveHeap();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, liveHeap())), 100);
  const started = performance.now();
  const day = Date.UTC(2027, 5, 14);
  const run = await reconciliation.run(
    tenant.tenantId,
    'SANDBOX_CARD',
    { from: new Date(day), to: new Date(day + 86_400_000) },
    'REQUESTED',
  );
  const returned = Date.now();
  clearInterval(sampler);
  if (run?.status !== 'SUCCEEDED') throw new Error(`the run ended ${run?.status}: ${run?.failure}`);
  return {
    peakMb: (peak - before) / 1e6,
    seconds: (performance.now() - started) / 1000,
    compared: run.compared,
    mismatches: run.mismatches,
    recorded: run.recorded,
    endSeconds: (returned - run.finishedAt!.getTime()) / 1000,
    ended: ended!,
  };
}

/** The baseline: the same ledger held in memory, as a run held it before its payments waited in the database. */
async function heldLedger(size: number): Promise<number> {
  const connector = madeUpLedger(size, 'held');
  const before = liveHeap();
  const held: ProviderPayment[] = [];
  const period = { from: new Date(Date.UTC(2027, 5, 7)), to: new Date(Date.UTC(2027, 5, 15)) };
  for (let cursor: string | null | undefined; cursor !== null;) {
    const page = await connector.ledger!(period, cursor, undefined as never);
    held.push(...page.items);
    cursor = page.nextCursor;
  }
  const heldMb = (liveHeap() - before) / 1e6;
  if (held.length !== size) throw new Error('the ledger was not read whole');
  return heldMb;
}

// Warm-up: the JIT and the connections.
await measuredRun(few);
const small = await measuredRun(few);
const large = await measuredRun(many);
const held = await heldLedger(many);
// At the cap: one endpoint takes every event, so that each difference told is a delivery to start.
const endpoint = await client.request('POST', '/v1/webhooks/endpoints', { body: { url: 'http://127.0.0.1:9/hooks' } });
if (endpoint.status !== 201) throw new Error(`endpoint: ${endpoint.status} ${JSON.stringify(endpoint.body)}`);
let declined: Measured;
let capped: Measured;
try {
  declined = await measuredRun(many);
  capped = await measuredRun(many, 'SETTLED');
} finally {
  // With its deliveries: no later worker on this database is to send them (to a port where no one listens).
  const { endpointId } = endpoint.body as { endpointId: string };
  const deleted = await client.request('DELETE', `/v1/webhooks/endpoints/${endpointId}`);
  if (deleted.status !== 204)
    console.error(`the benchmark's endpoint ${endpointId} was not deleted: ${deleted.status}`);
}
console.log(
  `reconciliation over a provider's ledger (made up, none of it ours), peak live heap above the run's start:`,
);
const line = (name: string, r: typeof small) =>
  `  ${name.padEnd(30)} +${r.peakMb.toFixed(1).padStart(6)} MB   ${r.seconds.toFixed(1)} s   compared ${r.compared}`;
console.log(line(`run over ${few.toLocaleString('en')} payments`, small));
console.log(line(`run over ${many.toLocaleString('en')} payments`, large));
console.log(
  `  baseline: the ${many.toLocaleString('en')} payments only held in memory, as a run held them before: +${held.toFixed(1)} MB (the run's peak is ${((100 * large.peakMb) / held).toFixed(1)}% of it)`,
);
console.log(
  `at its cap, the same ${many.toLocaleString('en')} payments with the period's settled (each a difference):`,
);
const ending = (name: string, r: Measured) => {
  const ms = r.ended.endMs;
  return [
    `${line(name, r)}   differences ${r.mismatches} (recorded ${r.recorded})`,
    `    its end ${r.endSeconds.toFixed(2)} s: closing transaction ${ms.closing} ms, deleting its entries ${ms.deletingEntries} ms, starting deliveries ${ms.startingDeliveries} ms (${r.ended.deliveries.started} of ${r.ended.deliveries.written} to the one endpoint started, the rest the dispatcher's)`,
  ].join('\n');
};
console.log(ending('period declined', declined));
console.log(ending('period settled', capped));
await stack.stop();
