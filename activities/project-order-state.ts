import type { MikroORM } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import type { OrderSnapshot } from '../domain/order.js';

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
      for (const state of snapshot.instructions) {
        await em.nativeUpdate(
          PaymentInstruction,
          { order: snapshot.orderId, tenantId: snapshot.tenantId, instructionRef: state.instructionRef },
          {
            status: state.status,
            attempts: state.attempts,
            appId: state.appId ?? null,
            providerRef: state.providerRef ?? null,
            failureCode: state.failureCode ?? null,
            nextActionAt: toDate(state.nextActionAt),
            openedAt: toDate(state.openedAt),
            processingAt: toDate(state.processingAt),
            lateAt: toDate(state.lateAt),
            settledAt: toDate(state.settledAt),
            failedAt: toDate(state.failedAt),
          },
        );
      }
    });
  };
}

function toDate(iso: string | undefined): Date | null {
  return iso ? new Date(iso) : null;
}
