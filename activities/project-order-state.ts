import type { MikroORM } from '@mikro-orm/postgresql';
import { PaymentOrder } from '../db/entities/index.js';
import type { OrderSnapshot } from '../domain/order.js';

// One statement for all of an order's instructions: jsonb_to_recordset turns the snapshot into
// rows to join on, instead of one UPDATE round trip per instruction.
const UPDATE_INSTRUCTIONS = `
  update payment_instruction as i set
    status = s.status, attempts = s.attempts, app_id = s.app_id, provider_ref = s.provider_ref, voucher_code = s.voucher_code,
    failure_code = s.failure_code, next_action_at = s.next_action_at, opened_at = s.opened_at,
    processing_at = s.processing_at, late_at = s.late_at, settled_at = s.settled_at, failed_at = s.failed_at
  from jsonb_to_recordset(?::jsonb) as s(
    instruction_ref text, status text, attempts int, app_id text, provider_ref text, voucher_code text, failure_code text,
    next_action_at timestamptz, opened_at timestamptz, processing_at timestamptz, late_at timestamptz,
    settled_at timestamptz, failed_at timestamptz)
  where i.order_id = ? and i.tenant_id = ? and i.instruction_ref = s.instruction_ref`;

/**
 * Writes a workflow snapshot into the read model. Idempotent by version: a retried or late
 * snapshot older than the stored one changes nothing, and the order row's lock orders writers.
 */
export function createProjectOrderState(orm: MikroORM) {
  return async function projectOrderState(snapshot: OrderSnapshot): Promise<void> {
    await orm.em.fork().transactional(async (em) => {
      const advanced = await em.nativeUpdate(
        PaymentOrder,
        { id: snapshot.orderId, tenantId: snapshot.tenantId, projectionVersion: { $lt: snapshot.version } },
        { status: snapshot.status, projectionVersion: snapshot.version, updatedAt: new Date() },
      );
      if (advanced === 0) return;
      const rows = snapshot.instructions.map((state) => ({
        instruction_ref: state.instructionRef,
        status: state.status,
        attempts: state.attempts,
        app_id: state.appId ?? null,
        provider_ref: state.providerRef ?? null,
        voucher_code: state.voucherCode ?? null,
        failure_code: state.failureCode ?? null,
        next_action_at: state.nextActionAt ?? null,
        opened_at: state.openedAt ?? null,
        processing_at: state.processingAt ?? null,
        late_at: state.lateAt ?? null,
        settled_at: state.settledAt ?? null,
        failed_at: state.failedAt ?? null,
      }));
      await em.getConnection().execute(UPDATE_INSTRUCTIONS, [JSON.stringify(rows), snapshot.orderId, snapshot.tenantId], 'run', em.getTransactionContext());
    });
  };
}
