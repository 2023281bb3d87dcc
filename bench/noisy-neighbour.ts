// One tenant's provider holding every request until it is given up, while another tenant's
// payments fall due: tenant B's lag from due to SETTLED beside tenant A, next to B's lag alone,
// measured in the same run (B alone, then B beside A, each twice, after a warm-up).
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- noisy-neighbour --instructions 50 --hold 5
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { loadConfig } from '../config.js';
import { cardPaymentsDue } from './support/order-burst.js';
import { PaymentInstruction } from '../db/entities/index.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { percentile } from './measure.js';

const { values } = parseArgs({
  options: {
    instructions: { type: 'string', default: '50' },
    /** Seconds tenant A's provider holds a request: the installation's timeout, the longest a call may take. */
    hold: { type: 'string', default: '5' },
    lead: { type: 'string', default: '15' },
    /** Seconds a burst may take before it is reported as not done (its lag counted as this long). */
    patience: { type: 'string', default: '180' },
  },
});
const count = Number(values.instructions);
const holdMs = Number(values.hold) * 1000;
const leadMs = Number(values.lead) * 1000;
const patienceMs = Number(values.patience) * 1000;

const config = loadConfig();
// A's calls fail on purpose, by the hundred: the SDK's warning for each would bury the figures.
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 }, { sdkLogLevel: 'ERROR' });

// Tenant A's own provider: it takes every request and never answers, until the client gives up.
const held = new Set<ServerResponse>();
let heldCalls = 0;
const provider = createServer((req, res) => {
  heldCalls += 1;
  held.add(res);
  req.resume();
  res.on('close', () => held.delete(res));
});
await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
const providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;

async function tenantClient(name: string) {
  const { tenant, client } = await stack.newTenant(name);
  return { client, tenantId: tenant.tenantId };
}

const { client: b, tenantId: bTenantId } = await tenantClient('tenant B');
const { client: a } = await tenantClient('tenant A');
const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const installed = await a.request('POST', '/v1/marketplace/apps/HTTP_CONNECTOR/install', {
  body: { configuration: { url: providerUrl, signingSecret: secret, timeoutMs: holdMs } },
});
if (installed.status !== 201)
  throw new Error(`install answered ${installed.status}: ${JSON.stringify(installed.body)}`);
const own = await a.request('POST', '/v1/schemes/collect', {
  body: {
    name: 'own provider',
    rules: [{ options: [{ appId: 'HTTP_CONNECTOR', paymentMethods: ['CARD'], priority: 1 }] }],
  },
});
if (own.status !== 201) throw new Error(`scheme answered ${own.status}: ${JSON.stringify(own.body)}`);
const aScheme = { schemeId: own.body.schemeId as string };

/** Orders of `count` instructions in all (ten to an order) for `client`, due at `due`. */
async function submit(
  client: PaymentSchedulerClient,
  tag: string,
  due: Date,
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  const refs = Array.from({ length: Math.ceil(count / 10) }, (_, o) => `${tag}-${due.getTime().toString(36)}-${o}`);
  await Promise.all(
    refs.map(async (orderRef, o) => {
      const instructions = cardPaymentsDue(Math.min(10, count - o * 10), due, extra);
      const res = await client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
      if (res.status !== 202) throw new Error(`${orderRef} answered ${res.status}`);
    }),
  );
  return refs;
}

/** B's lags, due to SETTLED, sorted; with A's instructions falling due at the same instant when `beside`. */
async function burst(beside: boolean): Promise<number[]> {
  const due = new Date(Date.now() + leadMs);
  const refs = await submit(b, 'b', due);
  if (beside) await submit(a, 'a', due, aScheme);
  if (Date.now() > due.getTime()) throw new Error('the burst was not submitted before it fell due: raise --lead');
  for (;;) {
    const rows = await stack.orm.em
      .fork()
      .find(
        PaymentInstruction,
        { tenantId: bTenantId, order: { orderRef: { $in: refs } }, status: 'SETTLED' },
        { fields: ['settledAt'] },
      );
    const lags = rows.map((r) => r.settledAt!.getTime() - due.getTime());
    if (rows.length === count) return lags.sort((x, y) => x - y);
    if (Date.now() - due.getTime() > patienceMs) {
      // What has not settled by now counts as this late: the figure is then a floor.
      console.log(`  (${count - rows.length} of B's payments not settled after ${patienceMs / 1000} s)`);
      return [...lags, ...Array<number>(count - rows.length).fill(patienceMs)].sort((x, y) => x - y);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const summary = (lags: number[]) =>
  `p50 ${(percentile(lags, 50) / 1000).toFixed(2)} s  p99 ${(percentile(lags, 99) / 1000).toFixed(2)} s  max ${(lags.at(-1)! / 1000).toFixed(2)} s`;

// Each measured twice after a warm-up: B alone first, since A's calls go on being retried for
// minutes after A's burst, and no run after one can be "alone".
await burst(false);
const alone = [await burst(false), await burst(false)];
const beside = [await burst(true), await burst(true)];

console.log(
  `noisy neighbour: ${count} of tenant B's card payments due at one instant, alone and beside ${count} of tenant A's whose provider holds every request ${holdMs / 1000} s; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
alone.forEach((lags, i) => console.log(`  B alone (run ${i + 1})          lag ${summary(lags)}`));
beside.forEach((lags, i) => console.log(`  B beside A (run ${i + 1})      lag ${summary(lags)}`));
const worst = (runs: number[][]) => Math.max(...runs.map((lags) => percentile(lags, 99)));
console.log(`  A's provider held ${heldCalls} calls meanwhile`);
console.log(
  `  ratio p99 B beside A / B alone (worst of each): ${(worst(beside) / worst(alone)).toFixed(2)} (target at most 2)`,
);

for (const res of held) res.destroy();
provider.close();
await stack.stop();
