import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import stableStringify from 'safe-stable-stringify';
import { createdFromOther, orderRequestHash } from '../../orders/order-plans.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';

const order = (amount: string, currency = 'EUR'): CreateOrderInput => ({
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
    },
  ],
});

/** A hash as the first version made it: the validated request as written. */
const v1 = (input: CreateOrderInput) => 'v1:' + createHash('sha256').update(stableStringify(input)).digest('base64url');

describe('an order request hash', () => {
  it('is the same for one amount written with more or fewer decimals, and differs for another amount', () => {
    expect(orderRequestHash(order('10.5'))).toBe(orderRequestHash(order('10.50')));
    expect(orderRequestHash(order('10'))).toBe(orderRequestHash(order('10.00')));
    expect(orderRequestHash(order('10.5'))).not.toBe(orderRequestHash(order('10.51')));
    // The same figure in a currency of other minor units is another amount.
    expect(orderRequestHash(order('10', 'JPY'))).not.toBe(orderRequestHash(order('10', 'EUR')));
  });

  it('tells an order stored under it from one with other contents, whatever its decimals', () => {
    const stored = { requestHash: orderRequestHash(order('10.50')) };
    expect(createdFromOther(stored, order('10.5'))).toBe(false);
    expect(createdFromOther(stored, order('10.51'))).toBe(true);
  });

  it('compares an order hashed by v1 as v1 did, and one hashed no known way as the same', () => {
    const stored = { requestHash: v1(order('10.50')) };
    expect(createdFromOther(stored, order('10.50'))).toBe(false);
    expect(createdFromOther(stored, order('10.51'))).toBe(true);
    expect(createdFromOther({ requestHash: null }, order('99'))).toBe(false);
    expect(createdFromOther({ requestHash: 'v9:whatever' }, order('99'))).toBe(false);
  });
});
