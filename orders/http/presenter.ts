import type { PaymentRefund } from '../../db/entities/index.js';
import type { NewInstructionRow, OrderRow } from '../read-model.js';
import type { InstructionStatus } from '../../domain/instruction-status.js';
import { formatAmount } from '../../domain/money.js';
import { orderTotals } from '../../domain/order-totals.js';
import type { z } from '../../api/http/zod.js';
import { orderWorkflowId } from '../contract/ids.js';
import { instructionFromRow } from '../read-model.js';
import { InstructionSchema, RefundSchema } from './schemas.js';

function presentOrderFields(order: OrderRow) {
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
export function presentOrder(order: OrderRow, instructions: readonly NewInstructionRow[]) {
  return {
    ...presentOrderFields(order),
    totals: presentTotals(orderTotals(instructions.map((row) => instructionFromRow(row)))),
    instructions: instructions.map(presentInstruction),
  };
}

function presentTotals(totals: ReturnType<typeof orderTotals>) {
  return Object.fromEntries(
    Object.entries(totals).map(([currency, sums]) => [
      currency,
      Object.fromEntries(
        Object.entries(sums).map(([k, v]) => [k, formatAmount(v as string, currency)]),
      ) as unknown as typeof sums,
    ]),
  );
}

/** The order as lists show it: a count of its instructions by status instead of the instructions. */
export function presentOrderSummary(order: OrderRow, byStatus: Partial<Record<InstructionStatus, number>>) {
  const total = Object.values(byStatus).reduce((sum, n) => sum + n, 0);
  return { ...presentOrderFields(order), instructionSummary: { total, byStatus } };
}

const API_FIELDS = Object.keys(InstructionSchema.shape);

/**
 * The instruction's API codec: every field the documented schema names, in its order, taken from
 * the row's declared shape under the same name (null when absent), except the few the API shows in
 * its own form: the amount as a decimal string, the dates under the API's names, the metadata.
 */
export function presentInstruction(row: NewInstructionRow): z.output<typeof InstructionSchema> {
  const instruction = instructionFromRow(row) as unknown as Record<string, unknown>;
  const shownOtherwise: Record<string, unknown> = {
    amount: formatAmount(row.amountMinor, row.currency),
    settledAmount: formatAmount(row.settledAmountMinor, row.currency),
    refundedAmount: formatAmount(row.refundedAmountMinor, row.currency),
    returnedAmount: formatAmount(row.returnedAmountMinor, row.currency),
    openDate: row.openAt.toISOString(),
    dueDate: row.dueAt.toISOString(),
    chargeDate: (row.chargeAt ?? row.dueAt).toISOString(),
    metadata: row.metadata,
  };
  return Object.fromEntries(
    API_FIELDS.map((field) => [field, field in shownOtherwise ? shownOtherwise[field] : (instruction[field] ?? null)]),
  ) as z.output<typeof InstructionSchema>;
}

/** A refund as the API shows it: amounts as decimal strings, absent values as null. */
export function presentRefund(refund: PaymentRefund): z.output<typeof RefundSchema> {
  return {
    refundId: refund.refundId,
    instructionRef: refund.instructionRef,
    number: refund.number,
    amount: formatAmount(refund.amountMinor, refund.currency),
    currency: refund.currency,
    reason: refund.reason ?? null,
    paymentRef: refund.paymentRef,
    status: refund.status,
    providerRef: refund.providerRef ?? null,
    failureCode: refund.failureCode ?? null,
    createdAt: refund.createdAt.toISOString(),
    succeededAt: refund.succeededAt?.toISOString() ?? null,
    failedAt: refund.failedAt?.toISOString() ?? null,
  };
}
