import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { MandateNews } from '../apps/app-connector.js';
import { mandateEnded } from '../domain/instrument.js';
import { PaymentInstruction, type PaymentInstrument } from '../db/entities/index.js';
import { recordEvents, tenantEvent } from '../webhooks/outbox.js';
import { startDeliveries } from '../webhooks/start-deliveries.js';
import { orderWorkflowId } from './contract/ids.js';
import { mandateChangedSignal } from './contract/messages.js';

/**
 * A mandate's life (ARCHITECTURE.md, "Customers"): created on the provider's form with a bank
 * account, confirmed (ACTIVE) or ended (CANCELLED, EXPIRED) later by the provider's callback. Each
 * change is told as an event; the orders relying on the instrument hear of it, so that a debit
 * waiting for its mandate is tried again, and one whose mandate ended waits for another instrument.
 */
export class Mandates {
  constructor(private readonly deps: { orm: MikroORM; temporal: Client }) {}

  /** Starts the deliveries of mandates' events once they have committed (the dispatcher starts any it misses). */
  async startDeliveries(deliveryIds: string[]): Promise<void> {
    if (deliveryIds.length > 0) await startDeliveries(this.deps.temporal, this.deps.orm, deliveryIds);
  }

  /** `mandate.created`, in the caller's transaction, when a stored instrument brings a mandate. */
  async created(em: EntityManager, instrument: PaymentInstrument, customerRef: string | null): Promise<string[]> {
    if (!instrument.mandateRef) return [];
    return recordEvents(em, instrument.tenantId, [this.event(instrument, 'mandate.created', customerRef)]);
  }

  /**
   * The provider's news of a mandate, in the caller's transaction. Returns what to do once it has
   * committed (start the events' deliveries, tell the orders), or nothing when it is no news.
   */
  async moved(
    em: EntityManager,
    instrument: PaymentInstrument,
    news: MandateNews,
  ): Promise<((log: Logger) => Promise<void>) | undefined> {
    if (instrument.mandateStatus === news.status || news.status === 'PENDING') return undefined;
    // An ended mandate stays ended: a late or retried confirmation must not let debits run under it again.
    if (mandateEnded(instrument.mandateStatus)) return undefined;
    instrument.mandateStatus = news.status;
    instrument.updatedAt = new Date();
    const type =
      news.status === 'ACTIVE'
        ? 'mandate.active'
        : news.status === 'CANCELLED'
          ? 'mandate.cancelled'
          : 'mandate.expired';
    const deliveries = await recordEvents(em, instrument.tenantId, [this.event(instrument, type, null)]);
    const relying = await em.find(
      PaymentInstruction,
      { tenantId: instrument.tenantId, instrumentId: instrument.id, status: { $in: ['PENDING', 'OPEN', 'LATE'] } },
      { populate: ['order'] },
    );
    const orderRefs = [...new Set(relying.map((i) => i.order.orderRef))];
    return async (log) => {
      await startDeliveries(this.deps.temporal, this.deps.orm, deliveries);
      for (const orderRef of orderRefs) {
        try {
          await this.deps.temporal.workflow
            .getHandle(orderWorkflowId(instrument.tenantId, orderRef))
            .signal(mandateChangedSignal, { instrumentId: instrument.id, status: news.status });
        } catch (err) {
          // The payment activity checks the mandate again before any debit: nothing is charged under an ended one.
          log.warn({ err, tenantId: instrument.tenantId, orderRef }, 'could not tell an order of its mandate');
        }
      }
    };
  }

  private event(
    instrument: PaymentInstrument,
    type: 'mandate.created' | 'mandate.active' | 'mandate.cancelled' | 'mandate.expired',
    customerRef: string | null,
  ) {
    // Per instrument: one mandate may be held on several (each is told), and told once each.
    const key = `mandate:${instrument.mandateRef}:${instrument.id}:${type}`;
    return tenantEvent(type, key, instrument.tenantId, new Date(), {
      mandate: {
        mandateRef: instrument.mandateRef,
        status: instrument.mandateStatus,
        signedAt: instrument.mandateSignedAt?.toISOString() ?? null,
      },
      instrument: { instrumentId: instrument.id, appId: instrument.appId, display: instrument.display },
      ...(customerRef ? { customerRef } : {}),
    });
  }
}
