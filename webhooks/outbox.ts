import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import { formatAmount } from '../domain/money.js';
import type { OrderProjection, RecordedEvent } from '../orders/contract/activities.js';

const INSERT_EVENT = `
  insert into order_event (id, tenant_id, event_key, type, order_ref, instruction_ref, occurred_at, payload, created_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?)
  on conflict (tenant_id, event_key) do nothing
  returning id`;

// A delivery of the event to every enabled endpoint of the tenant that takes its type, in one statement.
const INSERT_DELIVERIES = `
  insert into webhook_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, created_at, updated_at)
  select gen_random_uuid(), e.tenant_id, e.id, ?, ?, 'PENDING', 0, ?, ?
  from webhook_endpoint e
  where e.tenant_id = ? and e.enabled and (jsonb_array_length(e.event_types) = 0 or jsonb_exists(e.event_types, ?))
  returning id`;

/**
 * Records an order's events, each once (by its key), with the order's and the instruction's
 * metadata echoed, and a delivery for every enabled endpoint of the tenant that takes its type, in
 * the caller's transaction: an event and its deliveries exist together or not at all (the outbox
 * the delivery dispatcher works from). Returns the new deliveries' ids.
 */
export async function recordEvents(em: EntityManager, projection: OrderProjection): Promise<string[]> {
  if (projection.events.length === 0) return [];
  const order = await em.findOneOrFail(PaymentOrder, { id: projection.orderId, tenantId: projection.tenantId });
  const refs = [
    ...new Set(
      projection.events.map((e) => e.instruction?.instructionRef).filter((ref): ref is string => ref !== undefined),
    ),
  ];
  const instructions = refs.length
    ? await em.find(
        PaymentInstruction,
        { order: order.id, tenantId: order.tenantId, instructionRef: { $in: refs } },
        { fields: ['instructionRef', 'metadata'] },
      )
    : [];
  const metadataOf = new Map(instructions.map((i) => [i.instructionRef, i.metadata]));
  const connection = em.getConnection();
  // Times from here, not the database's now(): a row's created_at is a pagination key, and the
  // cursor carries milliseconds (now() has microseconds, and one value for the whole transaction).
  const recordedAt = new Date();
  const deliveries: string[] = [];
  for (const event of projection.events) {
    const id = randomUUID();
    const payload = JSON.stringify(
      payloadOf(
        id,
        event,
        order,
        projection.status,
        event.instruction ? (metadataOf.get(event.instruction.instructionRef) ?? {}) : undefined,
      ),
    );
    const inserted: { id: string }[] = await connection.execute(
      INSERT_EVENT,
      [
        id,
        order.tenantId,
        event.eventKey,
        event.type,
        order.orderRef,
        event.instruction?.instructionRef ?? null,
        event.occurredAt,
        payload,
        recordedAt,
      ],
      'all',
      em.getTransactionContext(),
    );
    if (inserted.length === 0) continue; // recorded by an earlier try of this projection
    const rows: { id: string }[] = await connection.execute(
      INSERT_DELIVERIES,
      [id, event.type, recordedAt, recordedAt, order.tenantId, event.type],
      'all',
      em.getTransactionContext(),
    );
    deliveries.push(...rows.map((row) => row.id));
  }
  return deliveries;
}

/** The body every endpoint receives for an event. */
function payloadOf(
  id: string,
  event: RecordedEvent,
  order: PaymentOrder,
  orderStatus: string,
  instructionMetadata: Record<string, string> | undefined,
) {
  const i = event.instruction;
  return {
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
              status: i.status,
              attempts: i.attempts,
              appId: i.appId,
              paymentMethod: i.paymentMethod,
              providerRef: i.providerRef ?? null,
              failureCode: i.failureCode ?? null,
              voucherCode: i.voucherCode ?? null,
              metadata: instructionMetadata ?? {},
            },
          }
        : {}),
    },
  };
}
