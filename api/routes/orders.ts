import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { UniqueConstraintViolationException, type FilterQuery, type MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import { PaymentOrder } from '../../db/entities/index.js';
import { buildOrder } from '../order-builder.js';
import { startOrderWorkflow, workflowInputOf } from '../../temporal/start-order-workflow.js';
import { problemResponses } from '../openapi.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { presentOrder } from '../presenters/order.js';
import { ApiError } from '../problem.js';
import { IdempotencyHeaderSchema, TenantHeaderSchema } from '../schemas/common.js';
import {
  CreateOrderSchema,
  ListOrdersQuerySchema,
  OrderListSchema,
  OrderRefParamsSchema,
  OrderSchema,
} from '../schemas/order.js';
import { validate } from '../validate.js';

export interface OrdersRouterDeps {
  orm: MikroORM;
  temporal: Client;
}

/** Mounted under /v1; OpenAPI paths carry the prefix. */
const BASE = '/order-management';
const DOC_BASE = `/v1${BASE}`;

export function ordersRouter({ orm, temporal }: OrdersRouterDeps, registry: OpenAPIRegistry): Router {
  const router = Router();

  registry.registerPath({
    method: 'post',
    path: DOC_BASE,
    summary: 'Submit a payment order',
    description:
      'Stores the order and starts its workflow, which opens, collects and settles each instruction on its dates. ' +
      'Answers 202: the schedule runs asynchronously.',
    tags: ['Orders'],
    request: {
      headers: TenantHeaderSchema.extend(IdempotencyHeaderSchema.shape),
      body: { content: { 'application/json': { schema: CreateOrderSchema } } },
    },
    responses: {
      202: { description: 'Accepted; the workflow runs the schedule', content: { 'application/json': { schema: OrderSchema } } },
      ...problemResponses(400, 409, 413, 422),
    },
  });
  router.post(BASE, async (req, res) => {
    const tenantId: string = res.locals.tenantId;
    const input = validate(CreateOrderSchema, req.body);
    const em = orm.em.fork();
    const order = buildOrder(em, tenantId, input);
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
      await em.flush();
    } catch (err) {
      // The order is safely stored; the worker's reconciler starts its workflow once Temporal answers.
      req.log.error({ err, tenantId, orderRef: order.orderRef }, 'could not start order workflow yet');
    }
    res.status(202).json(presentOrder(order));
  });

  registry.registerPath({
    method: 'get',
    path: DOC_BASE,
    summary: 'List orders, newest first',
    tags: ['Orders'],
    request: { headers: TenantHeaderSchema, query: ListOrdersQuerySchema },
    responses: {
      200: { description: 'A page of orders', content: { 'application/json': { schema: OrderListSchema } } },
      ...problemResponses(400),
    },
  });
  router.get(BASE, async (req, res) => {
    const tenantId: string = res.locals.tenantId;
    const query = validate(ListOrdersQuerySchema, req.query, 'query');
    const where: FilterQuery<PaymentOrder> = { tenantId };
    if (query.status) where.status = query.status;
    if (query.customerRef) where.customerRef = query.customerRef;
    if (query.cursor) {
      const cursor = decodeCursor(query.cursor);
      const createdAt = new Date(cursor.createdAt);
      where.$or = [{ createdAt: { $lt: createdAt } }, { createdAt, id: { $lt: cursor.id } }];
    }
    const orders = await orm.em.fork().find(PaymentOrder, where, {
      populate: ['instructions'],
      orderBy: { createdAt: 'desc', id: 'desc' },
      limit: query.limit + 1,
    });
    const page = orders.slice(0, query.limit);
    const last = page[page.length - 1];
    res.json({
      items: page.map(presentOrder),
      nextCursor: orders.length > query.limit ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
    });
  });

  registry.registerPath({
    method: 'get',
    path: `${DOC_BASE}/{orderRef}`,
    summary: 'Get an order with every instruction’s status and timestamps',
    tags: ['Orders'],
    request: { headers: TenantHeaderSchema, params: OrderRefParamsSchema },
    responses: {
      200: { description: 'The order', content: { 'application/json': { schema: OrderSchema } } },
      ...problemResponses(400, 404),
    },
  });
  router.get(`${BASE}/:orderRef`, async (req, res) => {
    const tenantId: string = res.locals.tenantId;
    const { orderRef } = validate(OrderRefParamsSchema, req.params, 'params');
    const order = await orm.em.fork().findOne(PaymentOrder, { tenantId, orderRef }, { populate: ['instructions'] });
    if (!order) throw new ApiError(404, 'order_not_found', `no order ${orderRef}`);
    res.json(presentOrder(order));
  });

  return router;
}
