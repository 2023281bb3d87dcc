import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { startDeliveries } from '../../webhooks/start-deliveries.js';
import { recordEvents } from '../../webhooks/outbox.js';
import { PaymentOrder } from '../../db/entities/index.js';
import type { OrderProjection } from '../contract/activities.js';

// One statement for every changed instruction: jsonb_to_recordset turns the batch into rows. An
// instruction added to a running order is inserted; one the read model has is updated, unless it
// already holds a newer version (a retried or late projection changes nothing). Metadata is only
// written when the batch carries it.
const UPSERT_INSTRUCTIONS = `
  insert into payment_instruction as i (
    id, order_id, tenant_id, position, instruction_ref, direction, amount_minor, currency, country, open_at, due_at,
    customer_ref, financial_instrument_id, metadata, scheme_id, scheme_version, resolved_options, payment_method, app_id,
    status, attempts, provider_ref, voucher_code, failure_code, next_action_at, opened_at, processing_at, late_at,
    settled_at, failed_at, cancelled_at, projection_version)
  select s.id, ?, ?, s.position, s.instruction_ref, s.direction, s.amount_minor, s.currency, s.country, s.open_at, s.due_at,
    s.customer_ref, s.financial_instrument_id, coalesce(s.metadata, '{}'::jsonb), s.scheme_id, s.scheme_version, s.resolved_options,
    s.payment_method, s.app_id, s.status, s.attempts, s.provider_ref, s.voucher_code, s.failure_code, s.next_action_at,
    s.opened_at, s.processing_at, s.late_at, s.settled_at, s.failed_at, s.cancelled_at, ?::bigint
  from jsonb_to_recordset(?::jsonb) as s(
    id uuid, position int, instruction_ref text, direction text, amount_minor bigint, currency text, country text,
    open_at timestamptz, due_at timestamptz, customer_ref text, financial_instrument_id text, metadata jsonb, scheme_id uuid,
    scheme_version int, resolved_options jsonb, payment_method text, app_id text, status text, attempts int, provider_ref text,
    voucher_code text, failure_code text, next_action_at timestamptz, opened_at timestamptz, processing_at timestamptz,
    late_at timestamptz, settled_at timestamptz, failed_at timestamptz, cancelled_at timestamptz)
  on conflict (id) do update set
    amount_minor = excluded.amount_minor, open_at = excluded.open_at, due_at = excluded.due_at,
    financial_instrument_id = excluded.financial_instrument_id,
    metadata = case when i.instruction_ref in (select jsonb_array_elements_text(?::jsonb)) then excluded.metadata else i.metadata end,
    scheme_id = excluded.scheme_id, scheme_version = excluded.scheme_version, resolved_options = excluded.resolved_options,
    payment_method = excluded.payment_method, app_id = excluded.app_id, status = excluded.status, attempts = excluded.attempts,
    provider_ref = excluded.provider_ref, voucher_code = excluded.voucher_code, failure_code = excluded.failure_code,
    next_action_at = excluded.next_action_at, opened_at = excluded.opened_at, processing_at = excluded.processing_at,
    late_at = excluded.late_at, settled_at = excluded.settled_at, failed_at = excluded.failed_at,
    cancelled_at = excluded.cancelled_at, projection_version = excluded.projection_version
  where i.projection_version < excluded.projection_version and i.tenant_id = excluded.tenant_id`;

/**
 * Writes an order's changes into the read model (ARCHITECTURE.md, "Temporal design"): only the
 * instructions that changed, in one statement, idempotent by version per row.
 */
export function createProjectOrder(orm: MikroORM, temporal?: Client) {
  return async function projectOrder(projection: OrderProjection): Promise<void> {
    const deliveries = await orm.em.fork().transactional(async (em) => {
      await em.nativeUpdate(
        PaymentOrder,
        { id: projection.orderId, tenantId: projection.tenantId, projectionVersion: { $lt: projection.version } },
        { status: projection.status, projectionVersion: projection.version, updatedAt: new Date() },
      );
      if (projection.instructions.length > 0) await upsertInstructions(em, projection);
      return recordEvents(em, projection);
    });
    // Sent without waiting: a delivery's own workflow takes it from here (the dispatcher, if this start fails).
    if (temporal && deliveries.length > 0) await startDeliveries(temporal, orm, deliveries);
  };
}

async function upsertInstructions(em: EntityManager, projection: OrderProjection): Promise<void> {
  const rows = projection.instructions.map((i) => ({
    id: i.instructionId,
    position: i.position,
    instruction_ref: i.instructionRef,
    direction: i.direction,
    amount_minor: i.amountMinor,
    currency: i.currency,
    country: i.country,
    open_at: i.openAt,
    due_at: i.dueAt,
    customer_ref: i.customerRef ?? null,
    financial_instrument_id: i.financialInstrumentId ?? null,
    metadata: i.metadata ?? null,
    scheme_id: i.schemeId,
    scheme_version: i.schemeVersion,
    resolved_options: i.options,
    payment_method: i.paymentMethod,
    app_id: i.appId,
    status: i.status,
    attempts: i.attempts,
    provider_ref: i.providerRef ?? null,
    voucher_code: i.voucherCode ?? null,
    failure_code: i.failureCode ?? null,
    next_action_at: i.nextActionAt ?? null,
    opened_at: i.openedAt ?? null,
    processing_at: i.processingAt ?? null,
    late_at: i.lateAt ?? null,
    settled_at: i.settledAt ?? null,
    failed_at: i.failedAt ?? null,
    cancelled_at: i.cancelledAt ?? null,
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
