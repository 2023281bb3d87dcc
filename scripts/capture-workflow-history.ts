// Records the event history of a representative order (a settled instruction, a dunned-then-failed
// one, a fraud decline) into test/workflow/histories/, for the replay test that guards running
// orders against incompatible workflow changes. Run it when a change is deliberately versioned
// with patched(), keeping the older files:  DATABASE_URL=… npx tsx scripts/capture-workflow-history.ts NAME
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import got from 'got';
import { createActivities } from '../activities/create-activities.js';
import { buildOrder } from '../api/orders/order-builder.js';
import { createAppRegistry } from '../apps/app-registry.js';
import { createSandboxApp } from '../apps/sandbox/server.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/orm.js';
import { orderWorkflowId } from '../domain/order.js';
import { registerSearchAttributes } from '../temporal/search-attribute-registration.js';
import { workflowInputOf } from '../temporal/start-order-workflow.js';
import { ensureTimeSkippingServer } from '../temporal/test-server.js';
import { WORKFLOWS_PATH } from '../worker/create-worker.js';
import { paymentOrderWorkflow } from '../workflows/payment-order.workflow.js';

const name = process.argv[2] ?? 'payment-order-v1';
const config = loadConfig();
const url = config.databaseUrl;
if (!url) throw new Error('set DATABASE_URL');
const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: ensureTimeSkippingServer(config.cacheDir) } });
await registerSearchAttributes(env.connection, 'default');
const orm = await openDatabase({ url, poolSize: config.databasePoolSize, migrate: true });
const sandbox = createSandboxApp().listen(0, '127.0.0.1');
await new Promise((resolve) => sandbox.once('listening', resolve));
const sandboxUrl = `http://127.0.0.1:${(sandbox.address() as { port: number }).port}`;

const tenantId = randomUUID();
const open = new Date((await env.currentTimeMs()) + 24 * 3600_000);
const due = new Date(open.getTime() + 24 * 3600_000);
const em = orm.em.fork();
const instruction = (ref: string, instrument: string) => ({
  instructionRef: ref,
  direction: 'DEBIT' as const,
  amount: '10.00',
  currency: 'EUR',
  country: 'NL',
  openDate: open.toISOString(),
  dueDate: due.toISOString(),
  financialInstrumentId: instrument,
});
const order = buildOrder(em, { id: tenantId, timeZone: null, dunningRetryDelaysDays: [1, 2] }, {
  orderRef: 'history-1',
  instructions: [instruction('settles', 'card_visa_4242'), instruction('dunned', 'card_insufficient_funds'), instruction('fraud', 'card_fraud')],
});
await em.flush();

const worker = await Worker.create({
  connection: env.nativeConnection,
  taskQueue: 'history-capture',
  workflowsPath: WORKFLOWS_PATH,
  activities: createActivities({ orm, apps: createAppRegistry(got, { sandboxUrl }) }),
});
const workflowId = orderWorkflowId(tenantId, 'history-1');
await worker.runUntil(
  env.client.workflow.execute(paymentOrderWorkflow, { workflowId, taskQueue: 'history-capture', args: [workflowInputOf(order)] }),
);
const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
// Binary protobuf: the SDK's JSON helper trips over the two protobufjs copies installed side by side.
const file = new URL(`../test/workflow/histories/${name}.binpb`, import.meta.url);
writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
console.log(`wrote ${file.pathname} (${history.events?.length} events)`);
sandbox.close();
await orm.close();
await env.teardown();
