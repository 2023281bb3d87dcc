// The instruction's row codec (ARCHITECTURE.md, "Temporal design"): the read model's row to and from
// the declared shape, and the projection's upsert, every column list taken from INSTRUCTION_COLUMNS.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  INSTRUCTION_COLUMNS,
  INSTRUCTION_FIELDS,
  type Column,
  type Instruction,
  type InstructionRow,
} from '../domain/instruction.js';
import type { Refund } from '../domain/refund.js';
import type { ProjectedInstruction, RecordedEvent } from './contract/activities.js';
import { ORDER_REF_UNIQUE, type PaymentInstruction, type PaymentOrder } from '../db/entities/index.js';

const columns = INSTRUCTION_FIELDS.map((field) => ({ field, ...INSTRUCTION_COLUMNS[field] }));

/** An order's own columns: the row, without the ORM's collection of its instructions. */
export type OrderRow = Omit<PaymentOrder, 'instructions'>;
/** An instruction's row as it is first stored: its declared columns and its metadata. */
export type NewInstructionRow = InstructionRow & Pick<PaymentInstruction, 'metadata'>;

/** An order as taken, before it is stored: its row and its instructions' rows, in their order. */
export interface NewOrder {
  order: OrderRow;
  instructions: NewInstructionRow[];
}

/** The instruction a row holds: times as ISO 8601, money as a string of minor units, nulls left out. */
export function instructionFromRow(row: InstructionRow): Instruction {
  const instruction: Record<string, unknown> = {};
  for (const { field } of columns) {
    const value = row[field];
    if (value === null || value === undefined) continue;
    instruction[field] =
      value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? value.toString() : value;
  }
  return instruction as unknown as Instruction;
}

/** The row that holds an instruction. */
export function rowOf(instruction: Instruction): InstructionRow {
  const row: Record<string, unknown> = {};
  for (const { field, type } of columns) {
    const value = instruction[field];
    if (value === undefined) row[field] = null;
    else if (type === 'timestamptz') row[field] = new Date(value as string);
    else if (type === 'bigint') row[field] = BigInt(value as string);
    else row[field] = value;
  }
  return row as InstructionRow;
}

// One statement for every changed instruction: jsonb_to_recordset turns the batch into rows. An
// instruction added to a running order is inserted; one the read model has is updated, unless it
// already holds a newer version (a retried or late projection changes nothing). Metadata is only
// written when the batch carries it. Fixed columns are written once, by the insert.
const UPSERT_INSTRUCTIONS = `
  insert into payment_instruction as i (${columns.map((c) => c.column).join(', ')}, metadata, order_id, tenant_id, projection_version)
  select ${columns.map((c) => `s.${c.column}`).join(', ')}, coalesce(s.metadata, '{}'::jsonb), ?, ?, ?::bigint
  from jsonb_to_recordset(?::jsonb) as s(${columns.map((c) => `${c.column} ${c.type}`).join(', ')}, metadata jsonb)
  on conflict (id) do update set
    ${columns
      .filter((c) => !('fixed' in c && c.fixed))
      .map((c) => `${c.column} = excluded.${c.column}`)
      .join(', ')},
    metadata = case when i.instruction_ref in (select jsonb_array_elements_text(?::jsonb)) then excluded.metadata else i.metadata end,
    projection_version = excluded.projection_version
  where i.projection_version < excluded.projection_version and i.tenant_id = excluded.tenant_id`;

/**
 * A value as its column can hold it. Text longer than its column is cut to fit: one over-long value
 * from a provider must never stop an order's projection (and with it its events and webhooks) for good.
 */
function storable(value: unknown, column: Column): unknown {
  if (value === undefined || value === null) return null;
  if (column.type === 'text' && column.length !== undefined && typeof value === 'string')
    return value.slice(0, column.length);
  return value;
}

/**
 * Writes the instructions of a projection into the read model, in one statement, idempotent by
 * version per row.
 */
export async function upsertInstructions(
  em: EntityManager,
  projection: { orderId: string; tenantId: string; version: string; instructions: ProjectedInstruction[] },
): Promise<void> {
  const rows = projection.instructions.map((instruction) => ({
    ...Object.fromEntries(columns.map((c) => [c.column, storable(instruction[c.field], c)])),
    metadata: instruction.metadata ?? null,
  }));
  const withMetadata = projection.instructions.filter((i) => i.metadata).map((i) => i.instructionRef);
  await em
    .getConnection()
    .execute(
      UPSERT_INSTRUCTIONS,
      [projection.orderId, projection.tenantId, projection.version, JSON.stringify(rows), JSON.stringify(withMetadata)],
      'run',
      em.getTransactionContext(),
    );
}

// A new order and all its instructions in one statement: atomic on its own, so no transaction is
// needed for it. A taken orderRef stores nothing of the order, and is no error: one would abort the
// transaction an Idempotency-Key's answer is committed in, and the caller asks the stored order
// whether it was this one.
const INSERT_ORDER = `
  with o as (
    insert into payment_order (id, tenant_id, order_ref, customer_ref, metadata, status, dunning_delays_ms, returns_policy,
      arrears_expiry_days, projection_version, workflow_started_at, request_hash, created_at, updated_at)
    values (?, ?, ?, ?, ?::jsonb, ?, ?::jsonb, ?, ?, ?::bigint, ?, ?, ?, ?)
    on conflict on constraint ${ORDER_REF_UNIQUE} do nothing
    returning id, tenant_id, projection_version)
  insert into payment_instruction (${columns.map((c) => c.column).join(', ')}, metadata, order_id, tenant_id, projection_version)
  select ${columns.map((c) => `s.${c.column}`).join(', ')}, s.metadata, o.id, o.tenant_id, o.projection_version
  from o, jsonb_to_recordset(?::jsonb) as s(${columns.map((c) => `${c.column} ${c.type}`).join(', ')}, metadata jsonb)`;

/** Stores a new order and its instructions (planOrder's rows), in one statement; false when its orderRef is taken. */
export async function insertOrder(em: EntityManager, { order, instructions }: NewOrder): Promise<boolean> {
  const rows = instructions.map((row) => ({
    ...Object.fromEntries(columns.map((c) => [c.column, columnValue(row[c.field])])),
    metadata: row.metadata,
  }));
  const stored: { affectedRows?: number } = await em
    .getConnection()
    .execute(
      INSERT_ORDER,
      [
        order.id,
        order.tenantId,
        order.orderRef,
        order.customerRef ?? null,
        JSON.stringify(order.metadata),
        order.status,
        order.dunningDelaysMs ? JSON.stringify(order.dunningDelaysMs) : null,
        order.returnsPolicy ?? null,
        order.arrearsExpiryDays ?? null,
        order.projectionVersion,
        order.workflowStartedAt ?? null,
        order.requestHash ?? null,
        order.createdAt,
        order.updatedAt,
        JSON.stringify(rows),
      ],
      'run',
      em.getTransactionContext(),
    );
  // Every order has an instruction: none inserted, no order was.
  return (stored.affectedRows ?? 0) > 0;
}

/** A row's value as JSON can carry it to jsonb_to_recordset: money (bigint) as its decimal string. */
function columnValue(value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : (value ?? null);
}

// Refunds, like instructions: one statement, inserted or updated unless the row holds a newer
// version. The instruction's id is found by its ref within the order. A refund's app never changes
// once it has one: a row an older worker wrote without it takes it from a later projection.
const UPSERT_REFUNDS = `
  insert into payment_refund as r (id, tenant_id, order_id, instruction_id, instruction_ref, number, amount_minor, currency,
    reason, payment_ref, app_id, status, provider_ref, failure_code, created_at, succeeded_at, failed_at, projection_version)
  select s.refund_id, ?, ?, i.id, s.instruction_ref, s.number, s.amount_minor, s.currency, s.reason, s.payment_ref, s.app_id, s.status,
    s.provider_ref, s.failure_code, s.created_at, s.succeeded_at, s.failed_at, ?::bigint
  from jsonb_to_recordset(?::jsonb) as s(refund_id uuid, instruction_ref text, number int, amount_minor bigint, currency text,
    reason text, payment_ref text, app_id text, status text, provider_ref text, failure_code text, created_at timestamptz,
    succeeded_at timestamptz, failed_at timestamptz)
  join payment_instruction i on i.order_id = ? and i.tenant_id = ? and i.instruction_ref = s.instruction_ref
  on conflict (id) do update set status = excluded.status, provider_ref = excluded.provider_ref,
    failure_code = excluded.failure_code, succeeded_at = excluded.succeeded_at, failed_at = excluded.failed_at,
    app_id = coalesce(r.app_id, excluded.app_id), projection_version = excluded.projection_version
  where r.projection_version < excluded.projection_version and r.tenant_id = excluded.tenant_id`;

// A refund's number is the workflow's to give. A PENDING row with no provider reference holding one
// the workflow has given to another refund is of a refund it never took: the row was written by a
// local write in a task that never completed (its worker killed), and Temporal then lost the update.
// Nothing was asked of the provider for it (refund calls are activities, scheduled only by a
// completed task); left, it would refuse the real refund's row (one number per instruction) and stop
// the order's projection. A row with a provider reference was sent (a run since reset may have
// forgotten it): never deleted, its number's conflict stops the projection for an operator to see.
const DROP_UNTAKEN_REFUNDS = `
  delete from payment_refund r
  using jsonb_to_recordset(?::jsonb) as s(refund_id uuid, instruction_ref text, number int), payment_instruction i
  where i.order_id = ? and i.tenant_id = ? and i.instruction_ref = s.instruction_ref
    and r.tenant_id = i.tenant_id and r.instruction_id = i.id and r.number = s.number and r.id <> s.refund_id
    and r.status = 'PENDING' and r.provider_ref is null
  returning r.id, r.instruction_ref, r.number`;

/** A refund row deleted as one its workflow never took. */
export interface UntakenRefund {
  id: string;
  instruction_ref: string;
  number: number;
}

/**
 * Writes the refunds of a projection into the read model, idempotent by version per row. Says which
 * rows of refunds the workflow never took it deleted (DROP_UNTAKEN_REFUNDS).
 */
export async function upsertRefunds(
  em: EntityManager,
  projection: { orderId: string; tenantId: string; version: string; refunds?: Refund[] },
): Promise<UntakenRefund[]> {
  const rows = (projection.refunds ?? []).map((r) => ({
    refund_id: r.refundId,
    instruction_ref: r.instructionRef,
    number: r.number,
    amount_minor: r.amountMinor,
    currency: r.currency,
    reason: r.reason ?? null,
    payment_ref: r.paymentRef,
    app_id: r.appId ?? null,
    status: r.status,
    provider_ref: r.providerRef ?? null,
    failure_code: r.failureCode ?? null,
    created_at: r.createdAt,
    succeeded_at: r.succeededAt ?? null,
    failed_at: r.failedAt ?? null,
  }));
  const rowsJson = JSON.stringify(rows);
  const untaken: UntakenRefund[] = await em
    .getConnection()
    .execute(
      DROP_UNTAKEN_REFUNDS,
      [rowsJson, projection.orderId, projection.tenantId],
      'all',
      em.getTransactionContext(),
    );
  await em
    .getConnection()
    .execute(
      UPSERT_REFUNDS,
      [projection.tenantId, projection.orderId, projection.version, rowsJson, projection.orderId, projection.tenantId],
      'run',
      em.getTransactionContext(),
    );
  return untaken;
}

// Each settlement told, on a row of its own (db/entities/payment-settlement.ts), once by its event's
// key. The instruction's id is found by its ref within the order, whose row the same transaction has
// just written. Settled at the moment its event was told: the workflow's time, as its settledAt.
const INSERT_SETTLEMENTS = `
  insert into payment_settlement (id, tenant_id, event_key, order_id, instruction_id, settled_at, amount_minor, currency,
    provider_ref, app_id, payment_method)
  select s.id, i.tenant_id, s.event_key, i.order_id, i.id, s.settled_at, s.amount_minor, i.currency, left(s.provider_ref, 128),
    s.app_id, s.payment_method
  from jsonb_to_recordset(?::jsonb) as s(id uuid, event_key text, instruction_ref text, settled_at timestamptz,
    amount_minor bigint, provider_ref text, app_id text, payment_method text)
  join payment_instruction i on i.order_id = ? and i.tenant_id = ? and i.instruction_ref = s.instruction_ref
  on conflict on constraint payment_settlement_tenant_event_key_unique do nothing`;

/** Records the settlements a projection's events tell of, each once. */
export async function recordSettlements(
  em: EntityManager,
  projection: { orderId: string; tenantId: string; events: RecordedEvent[] },
): Promise<void> {
  const rows = projection.events.flatMap(({ type, eventKey, occurredAt, instruction }) =>
    type === 'instruction.settled' && instruction
      ? [
          {
            id: randomUUID(),
            event_key: eventKey,
            instruction_ref: instruction.instructionRef,
            settled_at: occurredAt,
            amount_minor: instruction.amountMinor,
            provider_ref: instruction.providerRef ?? null,
            app_id: instruction.appId ?? null,
            payment_method: instruction.paymentMethod ?? null,
          },
        ]
      : [],
  );
  if (rows.length === 0) return;
  await em
    .getConnection()
    .execute(
      INSERT_SETTLEMENTS,
      [JSON.stringify(rows), projection.orderId, projection.tenantId],
      'run',
      em.getTransactionContext(),
    );
}
