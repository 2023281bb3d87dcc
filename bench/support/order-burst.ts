import type { MikroORM } from '@mikro-orm/postgresql';
import type { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { PaymentInstruction } from '../../db/entities/index.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';

/** An order's `count` card payments of 1.00 (instructions `i-0` …), opening and falling due at `due`. */
export function cardPaymentsDue(count: number, due: Date, extra: Record<string, unknown> = {}) {
  return Array.from({ length: count }, (_, n) => ({
    instructionRef: `i-${n}`,
    direction: 'DEBIT',
    amount: '1.00',
    currency: 'EUR',
    country: 'FR',
    openDate: due.toISOString(),
    dueDate: due.toISOString(),
    financialInstrumentId: 'card_ok',
    ...extra,
  }));
}

/**
 * An instalment plan: `months` monthly card payments of 49.99 from January 2030, each open on the
 * 1st and due on the 8th (order-intake's and batch-intake's orders).
 */
export function monthlyPremiums(orderRef: string, months: number): CreateOrderInput {
  return {
    orderRef,
    instructions: Array.from({ length: months }, (_, month) => {
      const yearMonth = `${2030 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, '0')}`;
      return {
        instructionRef: `premium-${month + 1}`,
        direction: 'DEBIT' as const,
        amount: '49.99',
        currency: 'EUR',
        country: 'DE',
        openDate: `${yearMonth}-01`,
        dueDate: `${yearMonth}-08`,
        financialInstrumentId: 'card_visa_4242',
      };
    }),
  };
}

export interface BurstShape {
  orders: number;
  perOrder: number;
  /** Between submitting the burst and its due instant: every workflow is started and asleep by then. */
  leadMs: number;
}

export interface BurstResult {
  /** Each payment's lag from the due instant to SETTLED, ascending. */
  lags: number[];
  orderRefs: string[];
  /** The instant every payment fell due (epoch ms). */
  dueMs: number;
}

/**
 * Submits `orders` orders through the API, each of `perOrder` card payments all due at one
 * instant, and waits until every one has SETTLED.
 */
export async function orderBurst(
  client: PaymentSchedulerClient,
  orm: MikroORM,
  tenantId: string,
  { orders, perOrder, leadMs }: BurstShape,
): Promise<BurstResult> {
  const due = new Date(Date.now() + leadMs);
  // Base 36: a run of 13+ digits in a reference can read as a card number, which the API refuses.
  const refs = Array.from({ length: orders }, (_, o) => `burst-${due.getTime().toString(36)}-${o}`);
  await Promise.all(
    refs.map(async (orderRef) => {
      const instructions = cardPaymentsDue(perOrder, due);
      const res = await client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
      if (res.status !== 202) throw new Error(`${orderRef} answered ${res.status}: ${JSON.stringify(res.body)}`);
    }),
  );
  if (Date.now() > due.getTime()) throw new Error('the burst was not submitted before it fell due: raise --lead');
  for (;;) {
    const rows = await orm.em
      .fork()
      .find(
        PaymentInstruction,
        { tenantId, order: { orderRef: { $in: refs } }, status: 'SETTLED' },
        { fields: ['settledAt'] },
      );
    if (rows.length === orders * perOrder) {
      const lags = rows.map((r) => r.settledAt!.getTime() - due.getTime()).sort((a, b) => a - b);
      return { lags, orderRefs: refs, dueMs: due.getTime() };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
