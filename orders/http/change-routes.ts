import type { EntityManager } from '@mikro-orm/postgresql';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { PaymentInstruction, PaymentOrder, Tenant } from '../../db/entities/index.js';
import { parseScheduleDate } from '../../domain/dates.js';
import { formatAmount } from '../../domain/money.js';
import { amountOrBadRequest } from '../../api/http/amount.js';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
} from '../contract/messages.js';
import type { InstructionAmendment } from '../workflow/instruction-machine.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { changeOrder, findInstruction, findOrder } from '../order-service.js';
import { planInstruction } from '../order-plans.js';
import { presentOrder } from './presenter.js';
import { instructionOptions, payInstruction } from '../payment-options.js';
import { resolveInstructions } from '../scheme-resolution.js';
import {
  AmendInstructionSchema,
  InstructionInputSchema,
  InstructionOptionsSchema,
  InstructionRefParamsSchema,
  OrderRefParamsSchema,
  OrderSchema,
  PayInstructionSchema,
} from './schemas.js';

export interface OrderChangeDeps {
  temporal: Client;
}

/**
 * Changes to a running order (ARCHITECTURE.md, "Temporal design"): each one a Temporal update to
 * the order's workflow, whose validator decides synchronously whether it may be made (a 409 says
 * why not). The API writes nothing itself: the workflow decides and projects, and the answer is
 * the order as the read model then shows it. An Idempotency-Key becomes the update's id, so a
 * retried request is the same update, taken once.
 */
export function addOrderChangeRoutes(routes: RouteTable, { temporal }: OrderChangeDeps): void {
  const change = (
    order: PaymentOrder,
    send: (handle: WorkflowHandle, updateId: string | undefined) => Promise<unknown>,
    idempotencyKey: string | undefined,
  ) => changeOrder(temporal, order, send, idempotencyKey && `api:${idempotencyKey}`);

  async function orderAnswer(em: EntityManager, order: PaymentOrder, status = 200) {
    em.clear();
    const fresh = await em.findOneOrFail(PaymentOrder, { id: order.id });
    const instructions = await em.find(
      PaymentInstruction,
      { order: order.id, tenantId: order.tenantId },
      { orderBy: { position: 'asc' } },
    );
    return { status, body: presentOrder(fresh, instructions) };
  }

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
      const order = await findOrder(em, tenantId, params.orderRef);
      await change(
        order,
        (handle, updateId) => handle.executeUpdate(cancelOrderUpdate, { args: [], updateId }),
        req.header('idempotency-key'),
      );
      return orderAnswer(em, order);
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
      const order = await findOrder(em, tenantId, params.orderRef);
      const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
      const [resolution] = await resolveInstructions(em, tenantId, [body], 'body');
      const plan = planInstruction(body, {
        tenant,
        customerRef: order.customerRef ?? undefined,
        resolution,
        position: 0,
      });
      await change(
        order,
        (handle, updateId) =>
          handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: body.metadata ?? {} }], updateId }),
        req.header('idempotency-key'),
      );
      return orderAnswer(em, order, 201);
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
      const order = await findOrder(em, tenantId, params.orderRef);
      const current = await findInstruction(em, order, params.instructionRef);
      const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
      const amendment: InstructionAmendment = {};
      const timeZone = tenant.timeZone ?? undefined;
      if (body.openDate) amendment.openAt = parseScheduleDate(body.openDate, timeZone)!.toISOString();
      if (body.dueDate) amendment.dueAt = parseScheduleDate(body.dueDate, timeZone)!.toISOString();
      const openAt = amendment.openAt ?? current.openAt.toISOString();
      const dueAt = amendment.dueAt ?? current.dueAt.toISOString();
      if (Date.parse(dueAt) < Date.parse(openAt)) {
        throw new ApiError(400, 'validation_failed', '1 field failed validation', [
          { path: 'dueDate', code: 'due_before_open', message: 'dueDate must not be before openDate' },
        ]);
      }
      if (body.financialInstrumentId) amendment.financialInstrumentId = body.financialInstrumentId;
      if (body.amount !== undefined)
        amendment.amountMinor = amountOrBadRequest(body.amount, current.currency, 'amount').toString();
      if (
        body.amount !== undefined ||
        body.schemeId !== undefined ||
        body.paymentMethod !== undefined ||
        body.financialInstrumentId !== undefined
      ) {
        // How it is paid follows from the scheme, for the new amount: resolved again.
        const [resolution] = await resolveInstructions(
          em,
          tenantId,
          [
            {
              direction: current.direction,
              amount: body.amount ?? formatAmount(current.amountMinor, current.currency),
              currency: current.currency,
              country: current.country,
              schemeId: body.schemeId ?? current.schemeId ?? undefined,
              paymentMethod:
                body.paymentMethod ?? (body.schemeId || body.amount ? undefined : (current.paymentMethod ?? undefined)),
              financialInstrumentId: body.financialInstrumentId ?? current.financialInstrumentId ?? undefined,
            },
          ],
          'body',
        );
        Object.assign(amendment, {
          schemeId: resolution.schemeId,
          schemeVersion: resolution.schemeVersion,
          options: resolution.options,
          appId: resolution.chosen.appId,
          paymentMethod: resolution.chosen.paymentMethod,
        });
      }
      await change(
        order,
        (handle, updateId) =>
          handle.executeUpdate(amendInstructionUpdate, {
            args: [{ instructionRef: current.instructionRef, amendment, metadata: body.metadata }],
            updateId,
          }),
        req.header('idempotency-key'),
      );
      return orderAnswer(em, order);
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
      const order = await findOrder(em, tenantId, params.orderRef);
      const instruction = await findInstruction(em, order, params.instructionRef);
      await change(
        order,
        (handle, updateId) =>
          handle.executeUpdate(cancelInstructionUpdate, {
            args: [{ instructionRef: instruction.instructionRef }],
            updateId,
          }),
        req.header('idempotency-key'),
      );
      return orderAnswer(em, order);
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
      const order = await findOrder(em, tenantId, params.orderRef);
      const instruction = await findInstruction(em, order, params.instructionRef);
      const options = await instructionOptions(em, instruction);
      return {
        status: 200,
        body: {
          instructionRef: instruction.instructionRef,
          status: instruction.status,
          amount: formatAmount(instruction.amountMinor, instruction.currency),
          currency: instruction.currency,
          country: instruction.country,
          direction: instruction.direction,
          options,
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
      const order = await findOrder(em, tenantId, params.orderRef);
      const instruction = await findInstruction(em, order, params.instructionRef);
      const key = req.header('idempotency-key');
      await payInstruction(em, temporal, order, instruction, body, key && `api:${key}`);
      return orderAnswer(em, order, 202);
    },
  });
}
