import { describe, expect, it } from 'vitest';
import { createdFromOther, orderRequestHash } from '../../orders/order-plans.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';

const order = (amount: string, currency = 'EUR', changes: Partial<CreateOrderInput['instructions'][0]> = {}) =>
  ({
    orderRef: 'o-1',
    instructions: [
      {
        instructionRef: 'a',
        direction: 'DEBIT',
        amount,
        currency,
        country: 'IE',
        openDate: '2030-01-01',
        dueDate: '2030-01-02',
        ...changes,
      },
    ],
  }) as CreateOrderInput;

/** The hash of `order('10.50')` as the first version (v1) made it and stored it: the request as written. */
const STORED_BY_V1 = 'v1:W_Sp7JhW8GHqadQnIVf2LtTvRk-OT3QEJY2b7a-pxdc';

describe('an order request hash', () => {
  it('is the same for one amount written with more or fewer decimals, and differs for another amount', () => {
    expect(orderRequestHash(order('10.5'))).toBe(orderRequestHash(order('10.50')));
    expect(orderRequestHash(order('10'))).toBe(orderRequestHash(order('10.00')));
    expect(orderRequestHash(order('10.5'))).not.toBe(orderRequestHash(order('10.51')));
    // As many minor units in a currency of other minor units: another amount.
    expect(orderRequestHash(order('1000', 'JPY'))).not.toBe(orderRequestHash(order('10.00', 'EUR')));
  });

  it('is the same for one instant written in another offset, and for empty metadata or none', () => {
    const at = (openDate: string) => order('10.50', 'EUR', { openDate, dueDate: '2030-01-02T00:00:00Z' });
    expect(orderRequestHash(at('2030-01-01T09:00:00+01:00'))).toBe(orderRequestHash(at('2030-01-01T08:00:00Z')));
    expect(orderRequestHash(at('2030-01-01T09:00:00+01:00'))).not.toBe(orderRequestHash(at('2030-01-01T09:00:00Z')));
    // A calendar date is the tenant's midnight, not known here: as written.
    expect(orderRequestHash(at('2030-01-01'))).not.toBe(orderRequestHash(at('2030-01-01T00:00:00Z')));
    expect(orderRequestHash({ ...order('10.50'), metadata: {} })).toBe(orderRequestHash(order('10.50')));
    expect(orderRequestHash(order('10.50', 'EUR', { metadata: {} }))).toBe(orderRequestHash(order('10.50')));
    expect(orderRequestHash(order('10.50', 'EUR', { metadata: { plan: 'gold' } }))).not.toBe(
      orderRequestHash(order('10.50')),
    );
  });

  it('tells an order stored under it from one with other contents, whatever its decimals', () => {
    const stored = { requestHash: orderRequestHash(order('10.50')) };
    expect(createdFromOther(stored, order('10.5'))).toBe(false);
    expect(createdFromOther(stored, order('10.51'))).toBe(true);
  });

  it('compares an order stored with a v1 hash as v1 did, and one hashed no known way as the same', () => {
    const stored = { requestHash: STORED_BY_V1 };
    expect(createdFromOther(stored, order('10.50'))).toBe(false);
    expect(createdFromOther(stored, order('10.51'))).toBe(true);
    expect(createdFromOther({ requestHash: null }, order('99'))).toBe(false);
    expect(createdFromOther({ requestHash: 'v9:whatever' }, order('99'))).toBe(false);
  });
});
