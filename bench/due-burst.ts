// A burst of instructions falling due at one instant: the lag from the due date to SETTLED (p50,
// p99, max), against its baseline measured in the same run on the same Temporal server: as many
// minimal workflows (sleep to the same kind of instant, one payment call to the same sandbox
// provider, complete). Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev
// server of its own).
//   npm run bench -- due-burst --orders 30 --per-order 10
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import got from 'got';
import { loadConfig } from '../config.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { percentile } from './measure.js';
import { orderBurst as burstOfOrders } from './support/order-burst.js';
import { minimalPaymentWorkflow, type MinimalPaymentActivities } from './workflows/minimal-payment.workflow.js';
import { newSandboxApiKey } from '../apps/sandbox/api-key.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '30' },
    'per-order': { type: 'string', default: '10' },
    lead: { type: 'string', default: '20' },
  },
});
const orders = Number(values.orders);
const perOrder = Number(values['per-order']);
const total = orders * perOrder;
/** Seconds between submitting the burst and its due instant: every workflow is started and asleep by then. */
const leadMs = Number(values.lead) * 1000;

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const { tenant, client } = await stack.newTenant('bench');

// The baseline's worker, beside the application's in the same process, paying the same sandbox.
const sandboxKey = newSandboxApiKey();
const activities: MinimalPaymentActivities = {
  async charge(idempotencyKey, reference) {
    await got.post(`${stack.sandboxUrl}/v1/payments`, {
      headers: { authorization: `Bearer ${sandboxKey}`, 'idempotency-key': idempotencyKey },
      json: {
        appId: 'SANDBOX_CARD',
        paymentMethod: 'CARD',
        direction: 'DEBIT',
        amountMinor: '100',
        currency: 'EUR',
        country: 'FR',
        instrument: 'card_ok',
        reference: { tenantId: tenant.tenantId, orderRef: 'minimal', instructionRef: reference },
      },
      retry: { limit: 0 },
      timeout: { request: 10_000 },
    });
    return Date.now();
  },
};
const connection = await NativeConnection.connect({ address: stack.temporalAddress });
const minimalWorker = await Worker.create({
  connection,
  taskQueue: 'bench-minimal',
  workflowBundle: await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./workflows/minimal-payment.workflow.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  }),
  activities,
});
const minimalRunning = minimalWorker.run();

async function minimalBurst(size = total): Promise<number[]> {
  const due = Date.now() + leadMs;
  const handles = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      stack.temporal.workflow.start(minimalPaymentWorkflow, {
        taskQueue: 'bench-minimal',
        workflowId: `minimal-${due}-${i}`,
        args: [due, `m-${due}-${i}`],
      }),
    ),
  );
  const settledAt = await Promise.all(handles.map((h) => h.result()));
  return settledAt.map((at) => at - due).sort((a, b) => a - b);
}

const orderBurst = (orderCount = orders) =>
  burstOfOrders(client, stack.orm, tenant.tenantId, { orders: orderCount, perOrder, leadMs });

const summary = (lags: number[]) =>
  `p50 ${(percentile(lags, 50) / 1000).toFixed(2)} s  p99 ${(percentile(lags, 99) / 1000).toFixed(2)} s  max ${(lags.at(-1)! / 1000).toFixed(2)} s`;

// Both paths warmed first (connections, caches, the JIT), then each measured twice, alternating, so
// that neither gets the cold run nor always the second one.
await minimalBurst(Math.max(1, Math.round(total / 10)));
await orderBurst(Math.max(1, Math.round(orders / 10)));
const runs: { minimal: number[]; ours: number[] }[] = [];
for (let run = 0; run < 2; run++) runs.push({ minimal: await minimalBurst(), ours: await orderBurst() });
console.log(
  `due burst: ${total} instructions (${orders} orders x ${perOrder}) due at one instant; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}`,
);
runs.forEach(({ minimal, ours }, run) => {
  console.log(`  run ${run + 1}: minimal workflow (baseline)   lag ${summary(minimal)}`);
  console.log(`  run ${run + 1}: payment orders                lag ${summary(ours)}`);
  console.log(
    `  run ${run + 1}: ratio p99 orders / minimal: ${(percentile(ours, 99) / percentile(minimal, 99)).toFixed(2)} (target at most 1.3)`,
  );
});

minimalWorker.shutdown();
await minimalRunning;
await connection.close();
await stack.stop();
