import type { RouteTable } from '../../api/http/route-table.js';
import type { PaymentLinks } from '../payment-links.js';
import { CreatePaymentLinkSchema, PaymentLinkSchema } from './payment-link-schemas.js';
import { InstructionRefParamsSchema } from './schemas.js';

export function addPaymentLinkRoutes(routes: RouteTable, links: PaymentLinks): void {
  routes.add({
    method: 'post',
    path: '/order-management/:orderRef/instructions/:instructionRef/payment-link',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'A link to a hosted page where the customer pays this instruction (or claims a payout)',
    description:
      'The link names this one instruction and nothing else, and expires (default 7 days; a payout link, whose holder chooses where ' +
      'the money goes, 48 hours and no longer than PAYOUT_LINK_TTL_SECONDS). The page offers the options of its scheme and pays through ' +
      'the same path as POST …/pay: one charge however often the customer submits. Refused (409) for an instruction already final. Audited.',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    body: CreatePaymentLinkSchema,
    bodyMayBeLeftOut: true,
    responses: { 201: { description: 'The link', schema: PaymentLinkSchema } },
    problems: [409],
    transactional: false,
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const { orderRef, instructionRef } = params;
      const link = await links.issue(em, principal, tenantId, orderRef, instructionRef, body.expiresInSeconds);
      return { status: 201, body: { url: link.url, expiresAt: link.expiresAt.toISOString() } };
    },
  });

  routes.add({
    method: 'delete',
    path: '/order-management/:orderRef/instructions/:instructionRef/payment-link',
    scope: 'tenant',
    roles: ['tenant-order-write'],
    summary: 'Revoke every payment link to this instruction issued until now',
    description: 'The page then answers 410 for each of them; a link issued afterwards works. Audited.',
    tags: ['Order changes'],
    params: InstructionRefParamsSchema,
    responses: { 204: { description: 'Revoked' } },
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      await links.revoke(em, principal, tenantId, params.orderRef, params.instructionRef);
      return { status: 204 };
    },
  });
}
