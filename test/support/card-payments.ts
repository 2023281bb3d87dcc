import { expect } from 'vitest';
import { PaymentInstruction } from '../../db/entities/index.js';
import { eventually } from './eventually.js';
import type { TenantFixture, TestSystem } from './system.js';

/**
 * An order of one card payment (instruction `i1`) due now, through the tenant's default card scheme:
 * its row once SETTLED, or once `until` says (a sandbox card that is charged back, say).
 */
export async function cardPaymentSettled(
  system: TestSystem,
  tenant: TenantFixture,
  orderRef: string,
  amount = '10.00',
  { card = 'card_visa_4242', until = (row: PaymentInstruction) => row.status === 'SETTLED' } = {},
): Promise<PaymentInstruction> {
  const now = Date.now();
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      instructions: [
        {
          instructionRef: 'i1',
          direction: 'DEBIT',
          amount,
          currency: 'EUR',
          country: 'FR',
          openDate: new Date(now - 1000).toISOString(),
          dueDate: new Date(now + 500).toISOString(),
          financialInstrumentId: card,
        },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return (await eventually(
    () =>
      system.orm.em
        .fork()
        .findOne(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef }, instructionRef: 'i1' }),
    (row) => row !== null && until(row),
    { what: `${orderRef} settled` },
  ))!;
}
