import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Context as ActivityContext } from '@temporalio/activity';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { Tracing } from '../observability/tracing.js';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import {
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type Logger,
  type WorkflowBundleOption,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { AppConnector } from '../apps/app-connector.js';
import { createActivities } from './create-activities.js';
import type { EndpointPace } from '../webhooks/endpoint-pace.js';
import { prebuiltWorkflowBundle } from './workflow-bundle.js';
import type { MasterKeys } from '../db/secret-box.js';
import type { OutboundUrlPolicy } from '../domain/outbound-url.js';
import { WEBHOOKS_TASK_QUEUE } from '../webhooks/contract.js';
import { PAYMENTS_TASK_QUEUE, tenantHostedQueue } from '../orders/contract/ids.js';

const WORKFLOWS_PATH = fileURLToPath(new URL('./workflows.ts', import.meta.url));

/**
 * Payment activities at once. A provider call holds no database connection while the provider
 * answers (reads before, the projection's write after, each a short checkout of the pool), so the
 * pool does not cap payments: at 300 ms a call, 100 at once allow some 300 payments a second.
 */
export const DEFAULT_PAYMENT_CONCURRENCY = 100;
/**
 * Webhook tries at once: each holds no database connection while its endpoint answers (up to 15 s).
 * One account's tenants have at most ACCOUNT_WEBHOOK_SLOTS of them (domain/webhook.ts).
 */
const WEBHOOK_CONCURRENCY = 20;
/**
 * Calls to providers tenants run themselves at once: each holds no database connection while the
 * provider answers (up to its installation's timeout), and none takes a place of the other payments.
 * One account's tenants have at most PROVIDER_CALLS_PER_ACCOUNT of them (orders/activities/payment-calls.ts).
 */
const TENANT_HOSTED_CONCURRENCY = 40;

export interface WorkerDependencies {
  connection: NativeConnection;
  namespace: string;
  orm: MikroORM;
  /** Connections for webhook tries alone (default: orm's). */
  webhookOrm?: MikroORM;
  /** Payment activities at once (default DEFAULT_PAYMENT_CONCURRENCY); see Config.paymentConcurrency. */
  paymentConcurrency?: number;
  apps: Map<string, AppConnector>;
  /** Open the tenants' app credentials and webhook secrets inside activities. */
  masterKeys: MasterKeys;
  /** Starts webhook deliveries as events are recorded. */
  temporal?: Client;
  outboundUrls?: OutboundUrlPolicy;
  /**
   * A prebuilt bundle saves the few seconds of bundling when a process creates several workers
   * (default: the build's file, `npm run build`, else bundled here).
   */
  workflowBundle?: WorkflowBundleOption;
  /** Order workflows kept in memory between their tasks (default DEFAULT_MAX_CACHED_WORKFLOWS). */
  maxCachedWorkflows?: number;
  /** Set: workflows and activities are traced (Temporal's OpenTelemetry interceptors), exported through it. */
  tracing?: Tracing;
  /** How fast webhook endpoints answer, which shares the webhook slots (default: each unproven, slow from 2 s). */
  webhookPace?: EndpointPace;
}

/**
 * The SDK sizes its workflow cache from the heap limit (thousands here), and every cached workflow
 * holds its state in memory: with thousands of orders asleep for months the worker grew past 2 GB.
 * A sleeping order needs no memory; one evicted is replayed from its history at its next timer.
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 500;
/** Deliveries are short and many: a small cache. */
const WEBHOOK_MAX_CACHED_WORKFLOWS = 100;

export interface PaymentWorkers {
  /** Runs both workers until shutdown. */
  run(): Promise<void>;
  shutdown(): void;
  isRunning(): boolean;
}

/** Temporal's workflow interceptors for OpenTelemetry: bundled with the workflows when tracing is on. */
const TRACING_WORKFLOW_INTERCEPTORS = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/**
 * `logger` receives webpack's progress lines (tests pass a quiet one); by default the SDK's own
 * logger, so they follow its level instead of printing webpack's whole module listing. `traced`:
 * with the tracing interceptors (they add headers and sink calls, no command: histories replay the same).
 */
export function bundlePaymentWorkflows(
  logger: Logger = Runtime.instance().logger,
  traced = false,
): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger,
    ...(traced ? { workflowInterceptorModules: [TRACING_WORKFLOW_INTERCEPTORS] } : {}),
  });
}

/**
 * The worker of a process: Temporal workers for payments, for calls to tenant-hosted providers, and
 * for webhook deliveries, each on a task queue (and activity slots) of its own, so that neither a
 * slow endpoint nor a tenant's slow provider can ever take a payment's place.
 */
export async function createWorkers(deps: WorkerDependencies): Promise<PaymentWorkers> {
  const traced = deps.tracing !== undefined;
  const workflowBundle =
    deps.workflowBundle ?? prebuiltWorkflowBundle(traced) ?? (await bundlePaymentWorkflows(undefined, traced));
  const activities = createActivities({
    orm: deps.orm,
    webhookOrm: deps.webhookOrm,
    apps: deps.apps,
    masterKeys: deps.masterKeys,
    temporal: deps.temporal,
    outboundUrls: deps.outboundUrls,
    webhookPace: deps.webhookPace,
  });
  const tracingOptions = deps.tracing
    ? {
        interceptors: {
          workflowModules: [TRACING_WORKFLOW_INTERCEPTORS],
          activity: [
            (ctx: ActivityContext) => ({
              inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
              outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
            }),
          ],
        },
        sinks: { exporter: makeWorkflowExporter(deps.tracing.spanProcessor, deps.tracing.resource) },
      }
    : {};
  const common = {
    connection: deps.connection,
    namespace: deps.namespace,
    workflowBundle,
    activities,
    ...tracingOptions,
  };
  const payments = await Worker.create({
    ...common,
    taskQueue: PAYMENTS_TASK_QUEUE,
    maxConcurrentActivityTaskExecutions: deps.paymentConcurrency ?? DEFAULT_PAYMENT_CONCURRENCY,
    maxCachedWorkflows: deps.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
  });
  // Activities only: the calls that orders running on `payments` send to tenant-hosted providers.
  const tenantHosted = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    activities,
    ...(deps.tracing ? { interceptors: { activity: tracingOptions.interceptors!.activity } } : {}),
    taskQueue: tenantHostedQueue(PAYMENTS_TASK_QUEUE),
    maxConcurrentActivityTaskExecutions: TENANT_HOSTED_CONCURRENCY,
  });
  const webhooks = await Worker.create({
    ...common,
    taskQueue: WEBHOOKS_TASK_QUEUE,
    maxConcurrentActivityTaskExecutions: WEBHOOK_CONCURRENCY,
    maxCachedWorkflows: WEBHOOK_MAX_CACHED_WORKFLOWS,
  });
  return {
    run: () => Promise.all([payments.run(), tenantHosted.run(), webhooks.run()]).then(() => undefined),
    shutdown() {
      for (const worker of [payments, tenantHosted, webhooks]) if (worker.getState() === 'RUNNING') worker.shutdown();
    },
    isRunning: () => payments.getState() === 'RUNNING',
  };
}
