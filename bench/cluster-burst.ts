// A large burst on the production topology: `--instructions` card payments (orders of `--per-order`)
// falling due at one instant on `npm run cluster`'s processes (the Temporal server on PostgreSQL,
// two workers and two APIs from the build, the sandbox provider), the lag from the due instant to
// SETTLED (p50, p99, max), against as many minimal workflows (sleep, one payment call to the same
// sandbox, complete) on the same Temporal server, run by as many worker processes of their own.
// Both lags end where the workflow takes the provider's answer (an order's settledAt, the
// minimal's takenAt).
// Starts its own cluster on free ports, on scratch databases of the PostgreSQL server at
// DATABASE_URL (dropped at the end), so it can run beside a cluster already up.
//   npm run bench -- cluster-burst --instructions 10000 --per-order 10
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import pLimit from 'p-limit';
import pg from 'pg';
import { bootstrapAccount } from '../api/auth/bootstrap-account.js';
import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { loadConfig } from '../config.js';
import { PaymentInstruction } from '../db/entities/index.js';
import { openDatabase } from '../db/orm.js';
import { startCluster } from '../scripts/cluster/topology.js';
import { ManagedProcess, waitUntil } from '../scripts/cluster/managed-process.js';
import { setUpFirstTenant } from '../scripts/first-tenant.js';
import { freeClusterPorts } from '../scripts/cluster/free-ports.js';
import { ensureTemporalServerBinaries } from '../scripts/temporal/server-binaries.js';
import { percentile } from './measure.js';
import { cardPaymentsDue } from './support/order-burst.js';
import { minimalPaymentWorkflow } from './workflows/minimal-payment.workflow.js';

const { values } = parseArgs({
  options: {
    instructions: { type: 'string', default: '10000' },
    'per-order': { type: 'string', default: '10' },
    /** Seconds from the burst's submission to its due instant: every workflow should be asleep by then. */
    lead: { type: 'string', default: '240' },
    workers: { type: 'string', default: '2' },
  },
});
const perOrder = Number(values['per-order']);
const orders = Math.ceil(Number(values.instructions) / perOrder);
const total = orders * perOrder;
const leadMs = Number(values.lead) * 1000;
const workerCount = Number(values.workers);
const MINIMAL_TASK_QUEUE = 'bench-minimal';
const WARM_UP_LEAD_MS = 20_000;
/** Requests and workflow starts in flight at once while a burst is submitted. */
const SUBMITTING = pLimit(16);

const config = loadConfig();
if (!config.databaseUrl) {
  console.error('cluster-burst needs a PostgreSQL server: set DATABASE_URL (its scratch databases go there)');
  process.exit(2);
}
const progress = (line: string) => process.stderr.write(`cluster-burst: ${line}\n`);

// Scratch databases on the same server: the application's, and the Temporal server's two; named
// by this process, so that two runs on one PostgreSQL server keep apart.
const scratch = {
  app: `bench_cluster_app_${process.pid}`,
  history: `bench_cluster_temporal_${process.pid}`,
  visibility: `bench_cluster_visibility_${process.pid}`,
};
const serverUrl = new URL(config.databaseUrl);
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${scratch.app}` }).toString();
async function onServer(statements: string[]) {
  const admin = new pg.Client({
    connectionString: Object.assign(new URL(serverUrl), { pathname: '/postgres' }).toString(),
  });
  await admin.connect();
  try {
    for (const statement of statements) await admin.query(statement);
  } finally {
    await admin.end();
  }
}
const dropScratch = () =>
  onServer(Object.values(scratch).map((name) => `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
await dropScratch();
await onServer([`CREATE DATABASE ${scratch.app}`]);

const masterKeys = { current: randomBytes(32).toString('base64') };
const dataDir = mkdtempSync(join(tmpdir(), 'cluster-burst-'));
progress(`starting the cluster (logs in ${join(dataDir, 'logs')})`);
const cluster = await startCluster({
  databaseUrl,
  temporalDatabases: { history: scratch.history, visibility: scratch.visibility },
  resetTemporal: true,
  binaries: ensureTemporalServerBinaries(config.cacheDir, progress),
  dataDir,
  masterKeys,
  workers: workerCount,
  ports: await freeClusterPorts(),
  logLevel: 'warn',
  env: { RATE_LIMIT_PER_MINUTE: '10000000' },
});
const orm = await openDatabase({ url: databaseUrl, poolSize: 2, log: () => undefined });
const temporal = new Client({ connection: await Connection.connect({ address: cluster.temporalAddress }) });
const account = await bootstrapAccount(orm, masterKeys, 'cluster-burst');
const tenant = await setUpFirstTenant(cluster.apiUrls[0], account);
const apis = cluster.apiUrls.map((baseUrl) => new PaymentSchedulerClient({ baseUrl, ...tenant }));

// The baseline's workers: as many processes as the application's, polling a queue of their own.
const minimalWorkers = Array.from(
  { length: workerCount },
  (_, i) =>
    new ManagedProcess(`minimal-worker-${i + 1}`, {
      command: process.execPath,
      args: ['--import', 'tsx', fileURLToPath(new URL('./workflows/minimal-worker.ts', import.meta.url))],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: cluster.temporalAddress,
        SANDBOX_URL: cluster.sandboxUrl,
        BENCH_TENANT_ID: tenant.tenantId,
        BENCH_TASK_QUEUE: MINIMAL_TASK_QUEUE,
      },
      logFile: join(dataDir, 'logs', `minimal-worker-${i + 1}.log`),
    }),
);
for (const worker of minimalWorkers) {
  worker.start();
  await waitUntil(
    `${worker.name} to poll`,
    async () => {
      const described = await temporal.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: MINIMAL_TASK_QUEUE },
      });
      return (described.pollers ?? []).some((p) => p.identity?.startsWith(`${worker.pid}@`));
    },
    worker,
    120_000,
  );
}

interface Burst {
  /** Each payment's lag from the due instant to its settlement, ascending. */
  lags: number[];
  /** Seconds it took to submit the burst (every order or workflow started). */
  submitSeconds: number;
}

/** Waits until `done()` reaches `size`, reporting progress every 30 s; fails after `limitMs`. */
async function waitForAll(what: string, size: number, done: () => Promise<number>, limitMs = 3_600_000) {
  const deadline = Date.now() + limitMs;
  let reported = Date.now();
  for (;;) {
    const count = await done();
    if (count >= size) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${count} of ${size} after ${limitMs / 1000} s`);
    if (Date.now() - reported > 30_000) {
      progress(`${what}: ${count} of ${size}`);
      reported = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function dueInstant(leadMs: number): { due: number; submitted: () => number } {
  const began = Date.now();
  const due = began + leadMs;
  return {
    due,
    submitted: () => {
      if (Date.now() > due) throw new Error('the burst was not submitted before it fell due: raise --lead');
      return (Date.now() - began) / 1000;
    },
  };
}

async function minimalBurst(size: number, leadMs: number): Promise<Burst> {
  const { due, submitted } = dueInstant(leadMs);
  const handles = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      SUBMITTING(() =>
        temporal.workflow.start(minimalPaymentWorkflow, {
          taskQueue: MINIMAL_TASK_QUEUE,
          workflowId: `minimal-${due}-${i}`,
          args: [due, `m-${due}-${i}`],
        }),
      ),
    ),
  );
  const submitSeconds = submitted();
  const since = new Date(due - leadMs - 1000).toISOString();
  await waitForAll(`minimal workflows completed`, size, async () =>
    Number(
      (
        await temporal.workflow.count(
          `WorkflowType = 'minimalPaymentWorkflow' AND ExecutionStatus = 'Completed' AND StartTime >= '${since}'`,
        )
      ).count,
    ),
  );
  const settled = await Promise.all(handles.map((h) => SUBMITTING(() => h.result())));
  // Where an order stamps settledAt: the workflow took the provider's answer (not the answer itself).
  return { lags: settled.map((s) => s.takenAt - due).sort((a, b) => a - b), submitSeconds };
}

async function orderBurst(orderCount: number, leadMs: number): Promise<Burst> {
  const { due, submitted } = dueInstant(leadMs);
  const dueDate = new Date(due);
  // Base 36: a run of 13+ digits in a reference can read as a card number, which the API refuses.
  const refs = Array.from({ length: orderCount }, (_, o) => `burst-${due.toString(36)}-${o}`);
  await Promise.all(
    refs.map((orderRef, o) =>
      SUBMITTING(async () => {
        // Both API processes take orders, as behind a load balancer.
        const res = await apis[o % apis.length].request('POST', '/v1/order-management', {
          body: { orderRef, instructions: cardPaymentsDue(perOrder, dueDate) },
        });
        if (res.status !== 202) throw new Error(`${orderRef} answered ${res.status}: ${JSON.stringify(res.body)}`);
      }),
    ),
  );
  const submitSeconds = submitted();
  const ofBurst = { tenantId: tenant.tenantId, order: { orderRef: { $in: refs } }, status: 'SETTLED' } as const;
  await waitForAll('payments settled', orderCount * perOrder, () => orm.em.fork().count(PaymentInstruction, ofBurst));
  const rows = await orm.em.fork().find(PaymentInstruction, ofBurst, { fields: ['settledAt'] });
  return { lags: rows.map((r) => r.settledAt!.getTime() - due).sort((a, b) => a - b), submitSeconds };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const summary = ({ lags, submitSeconds }: Burst) =>
  `lag p50 ${seconds(percentile(lags, 50))}  p99 ${seconds(percentile(lags, 99))}  max ${seconds(lags.at(-1)!)}  (submitted in ${submitSeconds.toFixed(0)} s; ${(lags.length / (lags.at(-1)! / 1000)).toFixed(1)} settled/s from the due instant to the last)`;

try {
  progress('warming up (a hundredth of the burst, each)');
  await minimalBurst(Math.max(1, Math.round(total / 100)), WARM_UP_LEAD_MS);
  await orderBurst(Math.max(1, Math.round(orders / 100)), WARM_UP_LEAD_MS);
  progress(`${total} minimal workflows due in ${leadMs / 1000} s`);
  const minimal = await minimalBurst(total, leadMs);
  progress(`${orders} orders of ${perOrder} due in ${leadMs / 1000} s`);
  const ours = await orderBurst(orders, leadMs);
  console.log(
    `cluster burst: ${total} instructions (${orders} orders x ${perOrder}) due at one instant on the production topology (Temporal server on PostgreSQL, ${workerCount} workers and 2 APIs from the build)`,
  );
  console.log(`  minimal workflow (baseline, ${workerCount} worker processes)  ${summary(minimal)}`);
  console.log(`  payment orders                                ${summary(ours)}`);
  const ratio = (p: number) => (percentile(ours.lags, p) / percentile(minimal.lags, p)).toFixed(2);
  console.log(`  ratio orders / minimal: p50 ${ratio(50)}, p99 ${ratio(99)}`);
} finally {
  for (const worker of minimalWorkers) await worker.stop();
  await temporal.connection.close();
  await orm.close();
  await cluster.stop();
  await dropScratch();
}
