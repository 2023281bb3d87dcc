import type { RouteTable } from '../../api/http/route-table.js';
import { refusedBatchItems } from '../../api/http/json-body.js';
import type { OrderService } from '../order-service.js';
import { presentOrder, presentOrderSummary } from './presenter.js';
import { takeOrderBatch } from './order-batch.js';
import { MAX_ORDERS_PER_BATCH } from '../contract/limits.js';
import {
  CreateOrderBatchSchema,
  CreateOrderSchema,
  OrderBatchSchema,
  ListOrdersQuerySchema,
  OrderListSchema,
  OrderRefParamsSchema,
  OrderSchema,
} from './schemas.js';

/** Taking orders and reading them back (ARCHITECTURE.md, "API conventions"). */
export function addOrderRoutes(routes: RouteTable, orders: OrderService): void {
  routes.add({
    method: 'post',
    path: '/order-management',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Submit a payment order',
    description:
      'Stores the order and starts its workflow, which opens, collects and settles each instruction on its dates. ' +
      'Each instruction is resolved against its scheme (or the tenant’s default) first: no option for it is a 400 naming it. ' +
      'Answers 202: the schedule runs asynchronously. An order sent again as it was (a retry after a lost answer) is not ' +
      'taken again: 200 with the order as it stands. Its orderRef taken by an order with other contents is 409 order_ref_conflict.',
    tags: ['Orders'],
    body: CreateOrderSchema,
    responses: {
      202: { description: 'Accepted; the workflow runs the schedule', schema: OrderSchema },
      200: { description: 'Sent before as it is: the order as it stands, not taken again', schema: OrderSchema },
    },
    problems: [409],
    // The order is stored by one statement: a transaction only to commit an Idempotency-Key's answer with it.
    transactional: 'with-idempotency-key',
    handler: async ({ body, em, req, context: { tenantId }, afterCommit }) => {
      const taken = await orders.createOrder(em, tenantId, body);
      if (taken.sentAgain) {
        const { order, instructions } = taken.stored;
        req.log.info({ tenantId, orderRef: body.orderRef }, 'order sent again: answered as stored');
        return { status: 200, body: presentOrder(order, instructions) };
      }
      const { created } = taken;
      req.log.info({ tenantId, orderRef: body.orderRef, instructions: created.instructions.length }, 'order stored');
      afterCommit(async () => void (await orders.start(created, req.log)));
      return { status: 202, body: presentOrder(created.order, created.instructions) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/batch',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Submit up to 1,000 payment orders at once',
    description:
      `Takes each order (at most ${MAX_ORDERS_PER_BATCH}) as POST /order-management would, each on its own: ` +
      'one refused order (its problem in its result) refuses only itself. An order sent again as it was is not taken again ' +
      '(status 200 with the stored order’s id), so sending a batch again after a lost answer takes nothing twice; an ' +
      'orderRef taken by an order with other contents is 409 order_ref_conflict. An orderRef named twice in one batch is taken ' +
      'after the one before it, as if sent again alone (200 for the same order, 409 for other contents, 202 if nothing was ' +
      'stored under it); an order holding a card or bank account ' +
      'number is refused alone (400, its orderRef not repeated), and kept nowhere. ' +
      'Answers 200 with a result per order, in the request’s order.',
    tags: ['Orders'],
    body: CreateOrderBatchSchema,
    batchItems: 'orders',
    // Each order is stored by a statement of its own, and its workflow started once that is done.
    transactional: false,
    responses: { 200: { description: 'A result per order', schema: OrderBatchSchema } },
    handler: async ({ body, em, req, context: { tenantId } }) => ({
      status: 200,
      body: await takeOrderBatch(em, tenantId, body.orders, orders, req.log, refusedBatchItems(req)),
    }),
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
    // Each order's status and its counts of instructions by status from one view, as for one order.
    transactional: 'snapshot',
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await orders.listOrders(em, tenantId, query);
      return {
        status: 200,
        body: {
          items: page.items.map((o) => presentOrderSummary(o, page.counts.get(o.id) ?? {})),
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
    // The order's status and its instructions' from one view of the read model, however a projection falls between the reads.
    transactional: 'snapshot',
    handler: async ({ params, em, context: { tenantId } }) => {
      const { order, instructions } = await orders.getOrder(em, tenantId, params.orderRef);
      return { status: 200, body: presentOrder(order, instructions) };
    },
  });
}
