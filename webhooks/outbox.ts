import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { EventType } from '../domain/webhook.js';

/** An event as the outbox records it, its body built by the one who tells it: the exact bytes every endpoint receives. */
export interface OutboxEvent {
  id: string;
  /** Names it for good: recording it again (a retried projection) changes nothing. */
  eventKey: string;
  type: EventType;
  /** Absent for the tenant's own events (an endpoint disabled, a delivery given up). */
  orderRef?: string;
  instructionRef?: string;
  occurredAt: string;
  payload: string;
}

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
    and e.id is distinct from ?
  returning id`;

/**
 * Records a tenant's events, each once (by its key), and a delivery for every enabled endpoint of
 * the tenant that takes its type, in the caller's transaction: an event and its deliveries exist
 * together or not at all (the outbox the delivery dispatcher works from). Returns the new
 * deliveries' ids, for the caller to start once its transaction has committed.
 */
export async function recordEvents(
  em: EntityManager,
  tenantId: string,
  events: OutboxEvent[],
  /** An endpoint that gets no delivery of these (the one whose failure they tell). */
  exceptEndpointId?: string,
  /** Told of each event recorded now (not by an earlier try), e.g. to count it once it commits. */
  onRecorded?: (event: OutboxEvent) => void,
): Promise<string[]> {
  const connection = em.getConnection();
  // Times from here, not the database's now(): a row's created_at is a pagination key, and the
  // cursor carries milliseconds (now() has microseconds, and one value for the whole transaction).
  const recordedAt = new Date();
  const deliveries: string[] = [];
  for (const event of events) {
    const inserted: { id: string }[] = await connection.execute(
      INSERT_EVENT,
      [
        event.id,
        tenantId,
        event.eventKey,
        event.type,
        event.orderRef ?? null,
        event.instructionRef ?? null,
        event.occurredAt,
        event.payload,
        recordedAt,
      ],
      'all',
      em.getTransactionContext(),
    );
    if (inserted.length === 0) continue; // recorded by an earlier try
    onRecorded?.(event);
    const rows: { id: string }[] = await connection.execute(
      INSERT_DELIVERIES,
      [event.id, event.type, recordedAt, recordedAt, tenantId, event.type, exceptEndpointId ?? null],
      'all',
      em.getTransactionContext(),
    );
    deliveries.push(...rows.map((row) => row.id));
  }
  return deliveries;
}

/** An event of the tenant's own (no order: an endpoint disabled, a mandate's news), its body as every endpoint receives it. */
export function tenantEvent(type: EventType, eventKey: string, tenantId: string, at: Date, data: object): OutboxEvent {
  const id = randomUUID();
  const occurredAt = at.toISOString();
  return { id, eventKey, type, occurredAt, payload: JSON.stringify({ id, type, occurredAt, tenantId, data }) };
}
