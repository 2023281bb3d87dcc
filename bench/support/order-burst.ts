import type { MikroORM } from '@mikro-orm/postgresql';
import type { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { PaymentInstruction } from '../../db/entities/index.js';

export interface BurstShape {
  orders: number;
  perOrder: number;
  /** Between submitting the burst and its due instant: every workflow is started and asleep by then. */
  leadMs: number;
}

/**
 * Submits `orders` orders through the API, each of `perOrder` card payments all due at one
 * instant, and waits until every one has SETTLED: each payment's lag from that instant, ascending.
 */
export async function orderBurst(
  client: PaymentSchedulerClient,
  orm: MikroORM,
  tenantId: string,
  { orders, perOrder, leadMs }: BurstShape,
): Promise<number[]> {
  const due = new Date(Date.now() + leadMs);
  // Base 36: a run of 13+ digits in a reference can read as a card number, which the API refuses.
  const refs = Array.from({ length: orders }, (_, o) => `burst-${due.getTime().toString(36)}-${o}`);
  await Promise.all(
    refs.map(async (orderRef) => {
      const instructions = Array.from({ length: perOrder }, (_, n) => ({
        instructionRef: `i-${n}`,
        direction: 'DEBIT',
        amount: '1.00',
        currency: 'EUR',
        country: 'FR',
        openDate: due.toISOString(),
        dueDate: due.toISOString(),
        financialInstrumentId: 'card_ok',
      }));
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
      return rows.map((r) => r.settledAt!.getTime() - due.getTime()).sort((a, b) => a - b);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
