// The instruction's event codec (ARCHITECTURE.md, "Webhooks"): the body every endpoint receives for
// an order's event, from what the workflow told and the metadata the read model holds.
import { randomUUID } from 'node:crypto';
import type { PaymentOrder } from '../db/entities/index.js';
import { EVENT_FIELDS, type EventInstruction } from '../domain/instruction.js';
import { formatAmount } from '../domain/money.js';
import type { OutboxEvent } from '../webhooks/outbox.js';
import type { RecordedEvent } from './contract/activities.js';

/** Fields the payload shows in the API's own form; every other told field goes as it is, null when absent. */
const REFORMED = new Set<keyof EventInstruction>([
  'instructionRef',
  'direction',
  'amountMinor',
  'currency',
  'dueAt',
  'chargeAt',
  'refundedAmountMinor',
  'returnedAmountMinor',
]);
const AS_TOLD = EVENT_FIELDS.filter((field) => !REFORMED.has(field));

/** What an order's events tell of the order itself, beside its status. */
export type ToldOrder = Pick<PaymentOrder, 'tenantId' | 'orderRef' | 'customerRef' | 'metadata'>;

/** An event of the order, ready for the outbox: its id, and its body as every endpoint receives it. */
export function outboxEventOf(
  event: RecordedEvent,
  order: ToldOrder,
  orderStatus: string,
  instructionMetadata: Record<string, string> | undefined,
  /** The mandate a coming bank debit is collected under (told with instruction.upcoming). */
  mandateRef?: string,
): OutboxEvent {
  const id = randomUUID();
  const i = event.instruction;
  const payload = {
    id,
    type: event.type,
    occurredAt: event.occurredAt,
    tenantId: order.tenantId,
    data: {
      order: {
        orderRef: order.orderRef,
        customerRef: order.customerRef ?? null,
        status: orderStatus,
        metadata: order.metadata,
      },
      ...(i
        ? {
            instruction: {
              instructionRef: i.instructionRef,
              direction: i.direction,
              amount: formatAmount(i.amountMinor, i.currency),
              currency: i.currency,
              dueDate: i.dueAt,
              chargeDate: i.chargeAt ?? i.dueAt,
              refundedAmount: formatAmount(i.refundedAmountMinor ?? '0', i.currency),
              // Told since events carried it; an event told before says nothing of it (not "0").
              returnedAmount:
                i.returnedAmountMinor === undefined ? null : formatAmount(i.returnedAmountMinor, i.currency),
              ...Object.fromEntries(AS_TOLD.map((field) => [field, i[field] ?? null])),
              metadata: instructionMetadata ?? {},
              ...(mandateRef ? { mandateRef } : {}),
            },
          }
        : {}),
      ...(event.refund
        ? {
            refund: {
              refundId: event.refund.refundId,
              number: event.refund.number,
              amount: formatAmount(event.refund.amountMinor, event.refund.currency),
              currency: event.refund.currency,
              reason: event.refund.reason ?? null,
              status: event.refund.status,
              providerRef: event.refund.providerRef ?? null,
              failureCode: event.refund.failureCode ?? null,
              createdAt: event.refund.createdAt,
            },
          }
        : {}),
      ...(event.counts ? { instructionCounts: event.counts } : {}),
    },
  };
  return {
    id,
    eventKey: event.eventKey,
    type: event.type,
    orderRef: order.orderRef,
    instructionRef: i?.instructionRef,
    occurredAt: event.occurredAt,
    payload: JSON.stringify(payload),
  };
}
