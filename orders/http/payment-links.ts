import { isFinal } from '../../domain/instruction-status.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import type { OrderService } from '../order-service.js';
import { InstructionRefParamsSchema } from './schemas.js';
import { issuePaymentLink } from './payment-link-token.js';
import { CreatePaymentLinkSchema, PaymentLinkSchema } from './payment-link-schemas.js';

export interface PaymentLinkDeps {
  orders: OrderService;
  linkKey: Uint8Array;
  /** The API as customers reach it: links point at `{publicApiUrl}/pay/{token}`. */
  publicApiUrl: string;
  defaultTtlSeconds: number;
}

export function addPaymentLinkRoutes(
  routes: RouteTable,
  { orders, linkKey, publicApiUrl, defaultTtlSeconds }: PaymentLinkDeps,
): void {
  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/payment-link',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'A link to a hosted page where the customer pays this instruction (or claims a payout)',
    description:
      'The link names this one instruction and nothing else, and expires (default 7 days). The page offers the options of its scheme ' +
      'and pays through the same path as POST …/pay: one charge however often the customer submits. Refused (409) for an instruction already final.',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: CreatePaymentLinkSchema,
    responses: { 201: { description: 'The link', schema: PaymentLinkSchema } },
    problems: [409],
    transactional: false,
    handler: async ({ params, body, em, context: { tenantId } }) => {
      const order = await orders.findOrder(em, tenantId, params.orderRef);
      const instruction = await orders.findInstruction(em, order, params.instructionRef);
      if (isFinal(instruction.status))
        throw new ApiError(
          409,
          'instruction_not_payable',
          `instruction ${instruction.instructionRef} is ${instruction.status}`,
        );
      const expiresAt = new Date(Date.now() + (body.expiresInSeconds ?? defaultTtlSeconds) * 1000);
      const token = await issuePaymentLink(
        linkKey,
        {
          tenantId,
          orderRef: order.orderRef,
          instructionRef: instruction.instructionRef,
          instructionId: instruction.instructionId,
        },
        expiresAt,
      );
      return { status: 201, body: { url: `${publicApiUrl}/pay/${token}`, expiresAt: expiresAt.toISOString() } };
    },
  });
}
