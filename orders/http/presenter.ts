import type { PaymentInstruction, PaymentOrder } from '../../db/entities/index.js';
import type { InstructionStatus } from '../../domain/instruction-status.js';
import { formatAmount } from '../../domain/money.js';
import { orderWorkflowId } from '../../domain/order.js';
import type { z } from '../../api/http/zod.js';
import type { InstructionSchema } from './schemas.js';

function presentOrderFields(order: PaymentOrder) {
  return {
    orderId: order.id,
    orderRef: order.orderRef,
    customerRef: order.customerRef ?? null,
    metadata: order.metadata,
    status: order.status,
    workflowId: orderWorkflowId(order.tenantId, order.orderRef),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
  };
}

/** The order with every instruction: the detail route and the create answer. */
export function presentOrder(order: PaymentOrder, instructions: PaymentInstruction[]) {
  return { ...presentOrderFields(order), instructions: instructions.map(presentInstruction) };
}

/** The order as lists show it: a count of its instructions by status instead of the instructions. */
export function presentOrderSummary(order: PaymentOrder, byStatus: Partial<Record<InstructionStatus, number>>) {
  const total = Object.values(byStatus).reduce((sum, n) => sum + n, 0);
  return { ...presentOrderFields(order), instructionSummary: { total, byStatus } };
}

/** Typed against the schema the route documents, so a field added to one and not the other fails to compile. */
function presentInstruction(i: PaymentInstruction): z.output<typeof InstructionSchema> {
  return {
    instructionRef: i.instructionRef,
    direction: i.direction,
    amount: formatAmount(i.amountMinor, i.currency),
    currency: i.currency,
    country: i.country,
    openDate: i.openAt.toISOString(),
    dueDate: i.dueAt.toISOString(),
    customerRef: i.customerRef ?? null,
    financialInstrumentId: i.financialInstrumentId ?? null,
    metadata: i.metadata,
    schemeId: i.schemeId ?? null,
    schemeVersion: i.schemeVersion ?? null,
    paymentMethod: i.paymentMethod ?? null,
    status: i.status,
    attempts: i.attempts,
    appId: i.appId ?? null,
    providerRef: i.providerRef ?? null,
    voucherCode: i.voucherCode ?? null,
    failureCode: i.failureCode ?? null,
    nextActionAt: iso(i.nextActionAt),
    openedAt: iso(i.openedAt),
    processingAt: iso(i.processingAt),
    lateAt: iso(i.lateAt),
    settledAt: iso(i.settledAt),
    failedAt: iso(i.failedAt),
    cancelledAt: iso(i.cancelledAt),
  };
}

function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}
