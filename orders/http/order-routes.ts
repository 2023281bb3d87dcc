import type { RouteTable } from '../../api/http/route-table.js';
import type { OrderService } from '../order-service.js';
import { presentOrder, presentOrderSummary } from './presenter.js';
import {
  CreateOrderSchema,
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
      'Answers 202: the schedule runs asynchronously.',
    tags: ['Orders'],
    body: CreateOrderSchema,
    responses: { 202: { description: 'Accepted; the workflow runs the schedule', schema: OrderSchema } },
    problems: [409],
    handler: async ({ body, em, req, context: { tenantId }, afterCommit }) => {
      const order = await orders.createOrder(em, tenantId, body);
      req.log.info({ tenantId, orderRef: order.orderRef, instructions: order.instructions.length }, 'order stored');
      afterCommit(() => orders.start(order, req.log));
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
    handler: async ({ params, em, context: { tenantId } }) => {
      const { order, instructions } = await orders.getOrder(em, tenantId, params.orderRef);
      return { status: 200, body: presentOrder(order, instructions) };
    },
  });
}
