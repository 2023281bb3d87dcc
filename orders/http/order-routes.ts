import {
  UniqueConstraintViolationException,
  type EntityManager,
  type FilterQuery,
  type MikroORM,
} from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { PaymentInstruction, PaymentOrder, Tenant } from '../../db/entities/index.js';
import type { InstructionStatus } from '../../domain/instruction-status.js';
import { START_DEADLINE_MS } from '../../temporal/connection.js';
import { startOrderWorkflow, workflowInputOf } from '../start-order.js';
import { findPage } from '../../api/http/pagination.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { buildOrder } from '../order-plans.js';
import { resolveInstructions } from '../scheme-resolution.js';
import { presentOrder, presentOrderSummary } from './presenter.js';
import {
  CreateOrderSchema,
  ListOrdersQuerySchema,
  OrderListSchema,
  OrderRefParamsSchema,
  OrderSchema,
} from './schemas.js';

export interface OrdersRouteDeps {
  orm: MikroORM;
  temporal: Client;
}

export function addOrderRoutes(routes: RouteTable, { orm, temporal }: OrdersRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/order-management',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Submit a payment order',
    description:
      'Stores the order and starts its workflow, which opens, collects and settles each instruction on its dates. ' +
      'Each instruction is resolved against its scheme (or the tenant’s default) first: no option for it is a 400 naming it. ' +
      'Answers 202: the schedule runs asynchronously.',
    tags: ['Orders'],
    body: CreateOrderSchema,
    responses: { 202: { description: 'Accepted; the workflow runs the schedule', schema: OrderSchema } },
    problems: [409],
    handler: async ({ body, em, req, context: { tenantId }, afterCommit }) => {
      const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
      const resolutions = await resolveInstructions(em, tenantId, body.instructions);
      const order = buildOrder(em, tenant, body, resolutions);
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          throw new ApiError(409, 'order_ref_conflict', `an order with orderRef ${body.orderRef} already exists`, [
            {
              path: 'orderRef',
              code: 'duplicate',
              message: 'orderRef is already used by another order of this tenant',
            },
          ]);
        }
        throw err;
      }
      req.log.info({ tenantId, orderRef: order.orderRef, instructions: order.instructions.length }, 'order stored');
      afterCommit(async () => {
        try {
          await temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
            startOrderWorkflow(temporal, workflowInputOf(order)),
          );
          await orm.em.fork().nativeUpdate(PaymentOrder, { id: order.id }, { workflowStartedAt: new Date() });
        } catch (err) {
          // The order is safely stored; the worker's reconciler starts its workflow once Temporal answers.
          req.log.warn({ err, tenantId, orderRef: order.orderRef }, 'could not start order workflow yet');
        }
      });
      return { status: 202, body: presentOrder(order, order.instructions.getItems()) };
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    summary: 'List orders, newest first',
    description:
      'Each order comes with a count of its instructions by status; GET /order-management/{orderRef} has the instructions.',
    tags: ['Orders'],
    query: ListOrdersQuerySchema,
    responses: { 200: { description: 'A page of orders', schema: OrderListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const where: FilterQuery<PaymentOrder> = { tenantId };
      if (query.status) where.status = query.status;
      if (query.customerRef) where.customerRef = query.customerRef;
      const page = await findPage(em, PaymentOrder, where, query, 'id');
      const counts = await instructionCounts(
        em,
        tenantId,
        page.items.map((o) => o.id),
      );
      return {
        status: 200,
        body: {
          items: page.items.map((o) => presentOrderSummary(o, counts.get(o.id) ?? {})),
          nextCursor: page.nextCursor,
        },
      };
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management/:orderRef',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    summary: 'Get an order with every instruction’s status and timestamps',
    tags: ['Orders'],
    params: OrderRefParamsSchema,
    responses: { 200: { description: 'The order', schema: OrderSchema } },
    handler: async ({ params, em, context: { tenantId } }) => {
      const order = await em.findOne(PaymentOrder, { tenantId, orderRef: params.orderRef });
      if (!order) throw new ApiError(404, 'order_not_found', `no order ${params.orderRef}`);
      // A query of its own: joined, each of up to 500 instruction rows would repeat the order's columns.
      const instructions = await em.find(
        PaymentInstruction,
        { order: order.id, tenantId },
        { orderBy: { position: 'asc' } },
      );
      return { status: 200, body: presentOrder(order, instructions) };
    },
  });
}

/** Instructions per status for each order of a page: one grouped query, at most 100 orders × 7 statuses rows. */
async function instructionCounts(em: EntityManager, tenantId: string, orderIds: string[]) {
  const counts = new Map<string, Partial<Record<InstructionStatus, number>>>();
  if (orderIds.length === 0) return counts;
  const rows: { order_id: string; status: InstructionStatus; count: string }[] = await em
    .getConnection()
    .execute(
      'select order_id, status, count(*) as count from payment_instruction where tenant_id = ? and order_id in (?) group by order_id, status',
      [tenantId, orderIds],
    );
  for (const row of rows) counts.set(row.order_id, { ...counts.get(row.order_id), [row.status]: Number(row.count) });
  return counts;
}
