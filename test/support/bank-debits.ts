import { eventually } from './eventually.js';
import type { TenantFixture } from './system.js';

/**
 * A bank debit the customer pays now (`POST …/pay`), in its order's open window: one collected the
 * moment it is asked, as a test of what follows needs. A scheduled bank debit cannot be: its customer
 * is told its notice period (14 days by default) before it is charged (ARCHITECTURE.md, "Business days").
 */
export async function bankDebitPaidNow(
  tenant: TenantFixture,
  orderRef: string,
  {
    instrument,
    appId = 'SANDBOX_BANK',
    schemeId,
    amount = '100.00',
  }: { instrument: string; appId?: string; schemeId?: string; amount?: string },
): Promise<void> {
  const now = Date.now();
  const order = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      instructions: [
        {
          instructionRef: 'a',
          direction: 'DEBIT',
          amount,
          currency: 'EUR',
          country: 'FR',
          openDate: new Date(now - 1000).toISOString(),
          dueDate: new Date(now + 30 * 86_400_000).toISOString(),
          paymentMethod: 'BANK_DEBIT',
          ...(schemeId ? { schemeId } : {}),
        },
      ],
    },
  });
  if (order.status !== 202) throw new Error(`order refused: ${JSON.stringify(order.body)}`);
  await eventually(
    async () => (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body.instructions?.[0]?.status,
    (status) => status === 'OPEN',
    { what: `${orderRef} open` },
  );
  const paid = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/pay`, {
    body: { appId, paymentMethod: 'BANK_DEBIT', financialInstrumentId: instrument },
  });
  if (paid.status !== 202) throw new Error(`payment refused: ${JSON.stringify(paid.body)}`);
}
