import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import { parseScheduleDate } from '../domain/dates.js';
import { parseAmount } from '../domain/money.js';
import type { CreateOrderInput } from './schemas/order.js';

/** Turns a validated create-order request into entities on `em` (not yet flushed). */
export function buildOrder(em: EntityManager, tenantId: string, input: CreateOrderInput): PaymentOrder {
  const now = new Date();
  const order = em.create(PaymentOrder, {
    id: randomUUID(),
    tenantId,
    orderRef: input.orderRef,
    customerRef: input.customerRef ?? null,
    metadata: input.metadata ?? {},
    status: 'ACTIVE',
    projectionVersion: 0,
    workflowStartedAt: null,
    createdAt: now,
    updatedAt: now,
  });
  input.instructions.forEach((instruction, position) => {
    order.instructions.add(
      em.create(PaymentInstruction, {
        id: randomUUID(),
        order,
        tenantId,
        position,
        instructionRef: instruction.instructionRef,
        direction: instruction.direction,
        amountMinor: parseAmount(instruction.amount, instruction.currency),
        currency: instruction.currency,
        country: instruction.country,
        openAt: parseScheduleDate(instruction.openDate) as Date,
        dueAt: parseScheduleDate(instruction.dueDate) as Date,
        customerRef: instruction.customerRef ?? input.customerRef ?? null,
        financialInstrumentId: instruction.financialInstrumentId ?? null,
        metadata: instruction.metadata ?? {},
        status: 'PENDING',
        attempts: 0,
      }),
    );
  });
  return order;
}
