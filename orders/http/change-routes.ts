import type { Request } from 'express';
import { requestFingerprint } from '../../api/http/idempotency.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { formatAmount } from '../../domain/money.js';
import type { OrderService } from '../order-service.js';
import { presentOrder, presentRefund } from './presenter.js';
import {
  AmendInstructionSchema,
  InstructionInputSchema,
  InstructionOptionsSchema,
  InstructionRefParamsSchema,
  OrderRefParamsSchema,
  OrderSchema,
  PayInstructionSchema,
  RefundInputSchema,
  RefundListSchema,
  RefundParamsSchema,
  RefundSchema,
  ResolveInstructionSchema,
  ResolveRefundSchema,
  RetryInstructionSchema,
} from './schemas.js';
import { PageQuerySchema } from '../../api/http/common-schemas.js';

/**
 * An Idempotency-Key becomes the update's id, with the request it came with: a retried request is
 * the same update, taken once, and the key reused with another request (once its record has expired)
 * is another update, never mistaken for the first.
 */
function updateIdOf(req: Request): string | undefined {
  const key = req.header('idempotency-key');
  return key && `api:${key}:${requestFingerprint(req.method, req.originalUrl, (req.body as unknown) ?? null)}`;
}

/**
 * Changes to a running order (ARCHITECTURE.md, "Temporal design"): each one a Temporal update to
 * the order's workflow, whose validator decides synchronously whether it may be made (a 409 says
 * why not). The API writes nothing itself: the workflow decides and projects, and the answer is
 * the order as the read model then shows it.
 */
export function addOrderChangeRoutes(routes: RouteTable, orders: OrderService): void {
  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/cancel',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Cancel an order: every instruction not yet final',
    description: 'Refused (409) while an instruction is being paid, or its last payment call went unanswered.',
    tags: ['Order changes'],
    params: OrderRefParamsSchema,
    responses: { 200: { description: 'The order as it now stands', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, em, req, context: { tenantId } }) => {
      const changed = await orders.cancelOrder(em, tenantId, params.orderRef, updateIdOf(req));
      return { status: 200, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Add an instruction to a running order',
    description: 'Resolved against its scheme as at order creation. Refused (409) once the order has finished.',
    tags: ['Order changes'],
    params: OrderRefParamsSchema,
    body: InstructionInputSchema,
    responses: { 201: { description: 'The order, with the new instruction', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { tenantId } }) => {
      const changed = await orders.addInstruction(em, tenantId, params.orderRef, body, updateIdOf(req));
      return { status: 201, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'patch',
    path: '/order-management/:orderRef/instructions/:instructionRef',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Amend an instruction: amount, dates, instrument, scheme, method or metadata',
    description:
      'Allowed while it is PENDING, OPEN or LATE. Its timer is re-planned at once: moved earlier it fires at the new date, moved later not at the old one. ' +
      'A new amount or scheme is resolved again (400 when the scheme offers no option for it).',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: AmendInstructionSchema,
    responses: { 200: { description: 'The order as it now stands', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const changed = await orders.amendInstruction(em, tenantId, orderRef, instructionRef, body, updateIdOf(req));
      return { status: 200, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/cancel',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Cancel one instruction',
    description: 'Allowed while it is PENDING, OPEN or LATE (and its last call did not go unanswered).',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    responses: { 200: { description: 'The order as it now stands', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, em, req, context: { tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const changed = await orders.cancelInstruction(em, tenantId, orderRef, instructionRef, updateIdOf(req));
      return { status: 200, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/resolve',
    scope: 'tenant',
    roles: ['tenant-admin'],
    summary: 'Resolve a payment of unknown outcome with what the provider says became of it',
    description:
      'When a payment call went unanswered, or the provider refused a retry of it, the instruction keeps the call’s idempotency key ' +
      'and can be neither amended, cancelled nor paid otherwise, since money may have moved. A tenant admin who has found out from ' +
      'the provider what happened says so here: SETTLED settles the instruction; NOT_PAID releases the key. So may a payment PENDING ' +
      'at a provider that refused for good to say how it ended when asked (its callback may never come; shown PROCESSING with a ' +
      'failure code status_refused:…). Audited. Refused (409) ' +
      'for an instruction with neither, or while the provider is being asked about it (try again once that ends), and ' +
      'a SETTLED naming a payment another instruction of the app holds (provider_ref_in_use).',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: ResolveInstructionSchema,
    responses: { 200: { description: 'The order as it now stands', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { principal, tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const id = updateIdOf(req);
      const changed = await orders.resolveInstruction(em, principal, tenantId, orderRef, instructionRef, body, id);
      return { status: 200, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/refunds',
    scope: 'tenant',
    roles: ['tenant-refund-write'],
    summary: 'Refund a settled collection, in full or in part',
    description:
      'Through the app that collected it, under an idempotency key of its own: made exactly once. An instruction may be refunded ' +
      'several times, never more in total than settled less what was refunded or returned, nor more of its last payment than that ' +
      'payment took (409 `refund_exceeds_refundable` says how much is left). Refused (409) for a payout, or an instruction not SETTLED (a payment taken back is not refunded). Card refunds ' +
      'answer at once; bank refunds are PENDING until the provider calls back. Idempotency-Key required.',
    tags: ['Refunds'],
    params: InstructionRefParamsSchema,
    body: RefundInputSchema,
    idempotencyKeyRequired: true,
    responses: { 201: { description: 'The refund as it now stands', schema: RefundSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const refund = await orders.createRefund(em, tenantId, orderRef, instructionRef, body, updateIdOf(req)!);
      return { status: 201, body: presentRefund(refund) };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/refunds/:refundId/resolve',
    scope: 'tenant',
    roles: ['tenant-admin'],
    summary: 'Resolve a refund of unknown outcome with what the provider says became of it',
    description:
      'When a refund call went unanswered, or the provider refused a retry of it, the refund keeps its idempotency key and is ' +
      'asked about again hourly, since it may have been made. A tenant admin who has found out from the provider what happened ' +
      'says so here: SUCCEEDED counts it as refunded; FAILED ends it, and its amount may be refunded again under a new refund. ' +
      'So may a refund PENDING at a provider that refused for good to say how it ended when asked (failure code status_refused:…). ' +
      'Audited. Refused (409) for a ' +
      'refund whose outcome is known, or PENDING at a provider that has not refused to say, or while a call of it (or a question ' +
      'about it) is under way (try again once it ends), and for a SUCCEEDED naming a provider refund another refund of the ' +
      'tenant through the app holds (provider_ref_in_use).',
    tags: ['Refunds'],
    params: RefundParamsSchema,
    body: ResolveRefundSchema,
    responses: { 200: { description: 'The refund as it now stands', schema: RefundSchema } },
    problems: [404, 409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { principal, tenantId } }) => {
      const { orderRef, instructionRef, refundId } = params;
      const id = updateIdOf(req);
      const refund = await orders.resolveRefund(em, principal, tenantId, orderRef, instructionRef, refundId, body, id);
      return { status: 200, body: presentRefund(refund) };
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management/:orderRef/instructions/:instructionRef/refunds',
    scope: 'tenant',
    roles: ['tenant-refund-read'],
    summary: 'The refunds of an instruction, newest first',
    tags: ['Refunds'],
    params: InstructionRefParamsSchema,
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of refunds', schema: RefundListSchema } },
    handler: async ({ params, query, em, context: { tenantId } }) => {
      const page = await orders.listRefunds(em, tenantId, params.orderRef, params.instructionRef, query);
      return { status: 200, body: { items: page.items.map(presentRefund), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/retry',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Retry a FAILED instruction',
    description:
      'It opens again with a new idempotency key, due at `dueDate` (now when absent), on another instrument if one is named, with ' +
      'the dunning schedule from its start; an order that had ended is ACTIVE again. Refused (409) for an instruction not FAILED, ' +
      'while an outcome of it is unknown, in a cancelled order, once the order has closed, or when it failed on a return of a ' +
      'payment refunded in part or whole first (its amount is no longer what is owed: collect the rest with a new order).',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: RetryInstructionSchema,
    bodyMayBeLeftOut: true,
    responses: { 200: { description: 'The order as it now stands', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const changed = await orders.retryInstruction(em, tenantId, orderRef, instructionRef, body, updateIdOf(req));
      return { status: 200, body: presentOrder(changed.order, changed.instructions) };
    },
  });

  routes.add({
    method: 'get',
    path: '/order-management/:orderRef/instructions/:instructionRef/options',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    summary: 'How an instruction may be paid: the options its scheme offered for it',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    responses: { 200: { description: 'The options, best first', schema: InstructionOptionsSchema } },
    handler: async ({ params, em, context: { tenantId } }) => {
      const order = await orders.findOrder(em, tenantId, params.orderRef);
      const instruction = await orders.findInstruction(em, order, params.instructionRef);
      return {
        status: 200,
        body: {
          instructionRef: instruction.instructionRef,
          status: instruction.status,
          amount: formatAmount(instruction.amountMinor, instruction.currency),
          currency: instruction.currency,
          country: instruction.country,
          direction: instruction.direction,
          options: await orders.paymentOptions(em, instruction),
        },
      };
    },
  });

  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/pay',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'The customer pays an instruction now, with one of its options',
    description:
      'Allowed while it is OPEN (or LATE). It is paid at once, not at its due date; follow it with GET. A second payment while the first ' +
      'is under way is refused (409): one charge.',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: PayInstructionSchema,
    responses: { 202: { description: 'Taken: the payment runs now', schema: OrderSchema } },
    problems: [409, 503],
    transactional: false,
    handler: async ({ params, body, em, req, context: { tenantId } }) => {
      const { orderRef, instructionRef } = params;
      const paid = await orders.payInstructionByRef(em, tenantId, orderRef, instructionRef, body, updateIdOf(req));
      return { status: 202, body: presentOrder(paid.order, paid.instructions) };
    },
  });
}
