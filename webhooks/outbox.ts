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

/** Whether an endpoint takes events of a type: no types listed, every type. */
export function takesType(eventTypes: readonly string[], type: string): boolean {
  return eventTypes.length === 0 || eventTypes.includes(type);
}

/** takesType in SQL, for endpoint `endpoint` and type `type`. */
export function endpointTakes(endpoint: string, type: string): string {
  return `(jsonb_array_length(${endpoint}.event_types) = 0 or jsonb_exists(${endpoint}.event_types, ${type}))`;
}

// Every event of a call and its deliveries in one statement (one round trip, however many events):
// each event is recorded once (by its key), and only an event recorded now gets a delivery for
// every enabled endpoint of the tenant that takes its type.
const RECORD_EVENTS = `
  with told as (
    select * from jsonb_to_recordset(?::jsonb) as s(id uuid, event_key text, type text, order_ref text,
      instruction_ref text, occurred_at timestamptz, payload text)
  ), recorded as (
    insert into order_event (id, tenant_id, event_key, type, order_ref, instruction_ref, occurred_at, payload, created_at)
    select told.id, ?, told.event_key, told.type, told.order_ref, told.instruction_ref, told.occurred_at, told.payload, ?
    from told
    on conflict (tenant_id, event_key) do nothing
    returning id, type
  ), delivered as (
    insert into webhook_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, created_at, updated_at)
    select gen_random_uuid(), e.tenant_id, e.id, recorded.id, recorded.type, 'PENDING', 0, ?, ?
    from recorded join webhook_endpoint e
      on e.tenant_id = ? and e.enabled and ${endpointTakes('e', 'recorded.type')}
        and e.id is distinct from ?
    returning id, event_id
  )
  select recorded.id as event_id, delivered.id as delivery_id
  from recorded left join delivered on delivered.event_id = recorded.id`;

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
  if (events.length === 0) return [];
  // Times from here, not the database's now(): a row's created_at is a pagination key, and the
  // cursor carries milliseconds (now() has microseconds, and one value for the whole transaction).
  const recordedAt = new Date();
  const told = events.map((e) => ({
    id: e.id,
    // A lone surrogate (half of a UTF-16 pair, from a provider's reference in a key) as U+FFFD, as the
    // driver's UTF-8 encoding stored it when each value was a parameter of its own: jsonb refuses one,
    // and a key must never stop a projection. (A body is JSON text, its surrogates escaped.)
    event_key: e.eventKey.toWellFormed(),
    type: e.type,
    order_ref: e.orderRef?.toWellFormed() ?? null,
    instruction_ref: e.instructionRef?.toWellFormed() ?? null,
    occurred_at: e.occurredAt,
    payload: e.payload,
  }));
  const rows: { event_id: string; delivery_id: string | null }[] = await em
    .getConnection()
    .execute(
      RECORD_EVENTS,
      [JSON.stringify(told), tenantId, recordedAt, recordedAt, recordedAt, tenantId, exceptEndpointId ?? null],
      'all',
      em.getTransactionContext(),
    );
  // An event not returned was recorded by an earlier try.
  const recorded = new Set(rows.map((row) => row.event_id));
  if (onRecorded) for (const event of events) if (recorded.has(event.id)) onRecorded(event);
  return rows.flatMap((row) => (row.delivery_id ? [row.delivery_id] : []));
}

/** An event of the tenant's own (no order: an endpoint disabled, a mandate's news), its body as every endpoint receives it. */
export function tenantEvent(type: EventType, eventKey: string, tenantId: string, at: Date, data: object): OutboxEvent {
  const id = randomUUID();
  const occurredAt = at.toISOString();
  return { id, eventKey, type, occurredAt, payload: JSON.stringify({ id, type, occurredAt, tenantId, data }) };
}
