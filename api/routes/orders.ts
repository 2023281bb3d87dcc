import { UniqueConstraintViolationException, type FilterQuery, type MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { PaymentOrder, Tenant } from '../../db/entities/index.js';
import { startOrderWorkflow, workflowInputOf } from '../../temporal/start-order-workflow.js';
import { buildOrder } from '../order-builder.js';
import { problemResponses } from '../openapi.js';
import { findPage } from '../pagination.js';
import { presentOrder } from '../presenters/order.js';
import { ApiError } from '../problem.js';
import type { RouteTable } from '../route-table.js';
import { IdempotencyHeaderSchema } from '../schemas/common.js';
import { CreateOrderSchema, ListOrdersQuerySchema, OrderListSchema, OrderRefParamsSchema, OrderSchema } from '../schemas/order.js';
import { validate } from '../validate.js';

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
    docs: {
      summary: 'Submit a payment order',
      description:
        'Stores the order and starts its workflow, which opens, collects and settles each instruction on its dates. ' +
        'Answers 202: the schedule runs asynchronously.',
      tags: ['Orders'],
      request: {
        headers: IdempotencyHeaderSchema,
        body: { content: { 'application/json': { schema: CreateOrderSchema } } },
      },
      responses: {
        202: { description: 'Accepted; the workflow runs the schedule', content: { 'application/json': { schema: OrderSchema } } },
        ...problemResponses(400, 409, 413, 422),
      },
    },
    handler: async (req, res, { tenantId }) => {
      const input = validate(CreateOrderSchema, req.body);
      const em = orm.em.fork();
      const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
      const order = buildOrder(em, tenant, input);
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          throw new ApiError(409, 'order_ref_conflict', `an order with orderRef ${input.orderRef} already exists`, [
            { path: 'orderRef', code: 'duplicate', message: 'orderRef is already used by another order of this tenant' },
          ]);
        }
        throw err;
      }
      req.log.info({ tenantId, orderRef: order.orderRef, instructions: order.instructions.length }, 'order stored');

      try {
        await startOrderWorkflow(temporal, workflowInputOf(order));
        order.workflowStartedAt = new Date();
        await em.nativeUpdate(PaymentOrder, { id: order.id }, { workflowStartedAt: order.workflowStartedAt });
      } catch (err) {
        // The order is safely stored; the worker's reconciler starts its workflow once Temporal answers.
        req.log.error({ err, tenantId, orderRef: order.orderRef }, 'could not start order workflow yet');
      }
      res.status(202).json(presentOrder(order));
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    docs: {
      summary: 'List orders, newest first',
      tags: ['Orders'],
      request: { query: ListOrdersQuerySchema },
      responses: {
        200: { description: 'A page of orders', content: { 'application/json': { schema: OrderListSchema } } },
        ...problemResponses(400),
      },
    },
    handler: async (req, res, { tenantId }) => {
      const query = validate(ListOrdersQuerySchema, req.query, 'query');
      const where: FilterQuery<PaymentOrder> = { tenantId };
      if (query.status) where.status = query.status;
      if (query.customerRef) where.customerRef = query.customerRef;
      const page = await findPage(orm.em.fork(), PaymentOrder, where, query, 'id', ['instructions']);
      res.json({ items: page.items.map(presentOrder), nextCursor: page.nextCursor });
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management/:orderRef',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    docs: {
      summary: 'Get an order with every instruction’s status and timestamps',
      tags: ['Orders'],
      request: { params: OrderRefParamsSchema },
      responses: {
        200: { description: 'The order', content: { 'application/json': { schema: OrderSchema } } },
        ...problemResponses(400),
      },
    },
    handler: async (req, res, { tenantId }) => {
      const { orderRef } = validate(OrderRefParamsSchema, req.params, 'params');
      const order = await orm.em.fork().findOne(PaymentOrder, { tenantId, orderRef }, { populate: ['instructions'] });
      if (!order) throw new ApiError(404, 'order_not_found', `no order ${orderRef}`);
      res.json(presentOrder(order));
    },
  });
}
