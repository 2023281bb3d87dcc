import { findPage } from '../../api/http/pagination.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { AppInstallation, ReconciliationItem, ReconciliationRun } from '../../db/entities/index.js';
import type { Reconciliation } from '../reconciliation.js';
import {
  ItemListSchema,
  MAX_PERIOD_DAYS,
  RequestRunSchema,
  RunListSchema,
  RunParamsSchema,
  RunSchema,
  RunsQuerySchema,
} from './schemas.js';

function presentRun(run: ReconciliationRun) {
  return {
    runId: run.id,
    appId: run.appId,
    periodFrom: run.periodFrom.toISOString(),
    periodTo: run.periodTo.toISOString(),
    trigger: run.trigger,
    status: run.status,
    compared: run.compared,
    mismatches: run.mismatches,
    recorded: run.recorded,
    failure: run.failure,
    createdAt: run.createdAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}

function presentItem(item: ReconciliationItem) {
  return {
    itemId: item.id,
    kind: item.kind,
    providerRef: item.providerRef,
    orderRef: item.orderRef,
    instructionRef: item.instructionRef,
    ours: (item.ours as { direction: string; amount: string; currency: string; status: string } | null) ?? null,
    theirs: (item.theirs as { direction: string; amount: string; currency: string; status: string } | null) ?? null,
    createdAt: item.createdAt.toISOString(),
  };
}

/** Reconciliation runs of the tenant's apps, and the differences each found (ARCHITECTURE.md, "Reconciliation"). */
export function addReconciliationRoutes(routes: RouteTable, reconciliation: Reconciliation): void {
  routes.add({
    method: 'post',
    path: '/reconciliation/runs',
    scope: 'tenant',
    roles: ['tenant-reconciliation-write'],
    summary: 'Reconcile an installed app over a period now',
    description:
      'Reads the provider’s own record of the period and compares it with the instructions: answers the finished run. ' +
      'Each whole day is also reconciled by itself an hour after it ends (UTC).',
    tags: ['Reconciliation'],
    body: RequestRunSchema,
    // A run that could not read the ledger is recorded too: the answer is the run, whatever it found.
    responses: {
      201: {
        description: 'The run, finished: SUCCEEDED, or FAILED with why (`failure`) when the ledger could not be read',
        schema: RunSchema,
      },
    },
    // It calls the provider: no transaction is held meanwhile.
    transactional: false,
    handler: async ({ body, em, context: { tenantId } }) => {
      const from = new Date(body.from);
      const to = new Date(body.to);
      if (to <= from || to.getTime() - from.getTime() > MAX_PERIOD_DAYS * 86_400_000)
        throw new ApiError(400, 'validation_failed', 'the period is empty or too long', [
          { path: 'to', code: 'invalid_period', message: `must be after from, by at most ${MAX_PERIOD_DAYS} days` },
        ]);
      if (!(await em.count(AppInstallation, { tenantId, appId: body.appId })))
        throw new ApiError(400, 'validation_failed', `${body.appId} is not installed`, [
          { path: 'appId', code: 'app_not_installed', message: 'install the app first' },
        ]);
      if (!reconciliation.reconcilable(body.appId))
        throw new ApiError(400, 'validation_failed', `${body.appId}'s provider keeps no ledger`, [
          { path: 'appId', code: 'app_not_reconcilable', message: 'its provider keeps no ledger to compare with' },
        ]);
      const run = await reconciliation.run(tenantId, body.appId, { from, to }, 'REQUESTED');
      return { status: 201, body: presentRun(run!) };
    },
  });

  routes.add({
    method: 'get',
    path: '/reconciliation/runs',
    scope: 'tenant',
    roles: ['tenant-reconciliation-read'],
    summary: 'List reconciliation runs, newest first',
    tags: ['Reconciliation'],
    query: RunsQuerySchema,
    responses: { 200: { description: 'A page of runs', schema: RunListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await findPage(em, ReconciliationRun, { tenantId }, query, 'id');
      return { status: 200, body: { items: page.items.map(presentRun), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/reconciliation/runs/:runId',
    scope: 'tenant',
    roles: ['tenant-reconciliation-read'],
    summary: 'Get a reconciliation run',
    tags: ['Reconciliation'],
    params: RunParamsSchema,
    responses: { 200: { description: 'The run', schema: RunSchema } },
    handler: async ({ params, em, context: { tenantId } }) => {
      const run = await em.findOne(ReconciliationRun, { id: params.runId, tenantId });
      if (!run) throw new ApiError(404, 'run_not_found', `no reconciliation run ${params.runId}`);
      return { status: 200, body: presentRun(run) };
    },
  });

  routes.add({
    method: 'get',
    path: '/reconciliation/runs/:runId/items',
    scope: 'tenant',
    roles: ['tenant-reconciliation-read'],
    summary: 'List the differences a run recorded (the first 1,000 it found at most)',
    tags: ['Reconciliation'],
    params: RunParamsSchema,
    query: RunsQuerySchema,
    responses: { 200: { description: 'A page of differences', schema: ItemListSchema } },
    handler: async ({ params, query, em, context: { tenantId } }) => {
      if (!(await em.count(ReconciliationRun, { id: params.runId, tenantId })))
        throw new ApiError(404, 'run_not_found', `no reconciliation run ${params.runId}`);
      const page = await findPage(em, ReconciliationItem, { tenantId, runId: params.runId }, query, 'id');
      return { status: 200, body: { items: page.items.map(presentItem), nextCursor: page.nextCursor } };
    },
  });
}
