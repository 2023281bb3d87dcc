import { describe, expect, it } from 'vitest';
import { callbackReferenceOf, finalResult } from '../../apps/app-connector.js';
import {
  checkedOutcome,
  checkedRefund,
  MalformedAnswerError,
  otherMoneyThanAsked,
} from '../../apps/provider-answer.js';
import { checkedLedgerPage } from '../../apps/provider-ledger.js';
import { checkedTokenised } from '../../apps/hosted-session-answer.js';
import { tokenHint } from '../../domain/instrument.js';

const tenantId = '9b2f8c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b';

describe("a provider's answer", () => {
  it('is believed when every field is well formed', () => {
    expect(checkedOutcome({ providerRef: 'pay_1', status: 'SETTLED' }, 'p')).toEqual({
      status: 'SETTLED',
      providerRef: 'pay_1',
    });
    expect(checkedOutcome({ providerRef: 'pay_1', status: 'SETTLED', voucherCode: 'VCH-1' }, 'p')).toMatchObject({
      voucherCode: 'VCH-1',
    });
    expect(
      checkedOutcome({ providerRef: 'p', status: 'DECLINED', declineCode: 'insufficient_funds', retryable: true }, 'p'),
    ).toEqual({ status: 'DECLINED', providerRef: 'p', code: 'insufficient_funds', retryable: true });
    expect(checkedOutcome({ providerRef: 'p', status: 'DECLINED' }, 'p')).toEqual({
      status: 'DECLINED',
      providerRef: 'p',
      code: 'declined',
      retryable: false,
    });
    expect(checkedOutcome({ providerRef: 'x'.repeat(128), status: 'PENDING' }, 'p').status).toBe('PENDING');
  });

  it.each([
    ['no answer', undefined],
    ['a reference over 128 characters', { providerRef: 'x'.repeat(129), status: 'SETTLED' }],
    ['a reference that is not a string', { providerRef: 42, status: 'SETTLED' }],
    ['a reference with a space', { providerRef: 'pay 1', status: 'SETTLED' }],
    ['an unknown status', { providerRef: 'p', status: 'PAID' }],
    ['a status of another type', { providerRef: 'p', status: ['SETTLED'] }],
    ['a decline code over 64 characters', { providerRef: 'p', status: 'DECLINED', declineCode: 'c'.repeat(65) }],
    ['a decline code with markup', { providerRef: 'p', status: 'DECLINED', declineCode: '<b>no</b>' }],
    ['retryable as a string', { providerRef: 'p', status: 'DECLINED', retryable: 'yes' }],
    ['a voucher code of another type', { providerRef: 'p', status: 'SETTLED', voucherCode: {} }],
    // No bank account number is kept from an answer, nor a card number where a word belongs.
    ['a reference that is an IBAN', { providerRef: 'DE89370400440532013000', status: 'SETTLED' }],
    ['a voucher code that is an IBAN', { providerRef: 'p', status: 'SETTLED', voucherCode: 'NL91ABNA0417164300' }],
    ['a decline code that is a card number', { providerRef: 'p', status: 'DECLINED', declineCode: '4111111111111111' }],
    ['a return code that is an IBAN', { providerRef: 'p', status: 'RETURNED', returnCode: 'GB82WEST12345698765432' }],
    // The money a settlement states, when it states any: both, whole minor units and a currency code.
    ['an amount without its currency', { providerRef: 'p', status: 'SETTLED', amountMinor: '100' }],
    ['a currency without its amount', { providerRef: 'p', status: 'SETTLED', currency: 'EUR' }],
    ['an amount in major units', { providerRef: 'p', status: 'SETTLED', amountMinor: '1.00', currency: 'EUR' }],
    ['a negative amount', { providerRef: 'p', status: 'SETTLED', amountMinor: -100, currency: 'EUR' }],
    ['a float amount', { providerRef: 'p', status: 'SETTLED', amountMinor: 100.5, currency: 'EUR' }],
    ['a currency in lower case', { providerRef: 'p', status: 'SETTLED', amountMinor: '100', currency: 'eur' }],
    [
      'an amount that is a card number',
      { providerRef: 'p', status: 'SETTLED', amountMinor: '4111111111111111', currency: 'EUR' },
    ],
    [
      'an amount taken back in major units',
      { providerRef: 'p', status: 'RETURNED', returnCode: 'x', returnedAmountMinor: '7.00' },
    ],
    [
      'an amount taken back that is a card number',
      { providerRef: 'p', status: 'CHARGED_BACK', reason: 'fraud', returnedAmountMinor: '4111111111111111' },
    ],
  ])('is malformed with %s: no answer at all, never a refusal', (_what, answer) => {
    expect(() => checkedOutcome(answer as never, 'the provider')).toThrow(MalformedAnswerError);
  });

  it('keeps the money a return or chargeback says it took back, when it says', () => {
    const reversal = (answer: object) => checkedOutcome({ providerRef: 'p', ...answer } as never, 'p');
    expect(reversal({ status: 'RETURNED', returnCode: 'insufficient_funds', returnedAmountMinor: 700 })).toEqual({
      status: 'RETURNED',
      providerRef: 'p',
      kind: 'RETURN',
      code: 'insufficient_funds',
      amountMinor: '700',
    });
    expect(reversal({ status: 'CHARGED_BACK', reason: 'fraud', returnedAmountMinor: '0' })).toMatchObject({
      kind: 'CHARGEBACK',
      amountMinor: '0',
    });
    expect(reversal({ status: 'RETURNED', returnCode: 'closed' })).not.toHaveProperty('amountMinor');
  });

  it('keeps the money a settlement states, and believes it only when it is what was asked', () => {
    const asked = { amountMinor: '3000', currency: 'EUR' };
    const stated = (amountMinor: unknown, currency: unknown) =>
      checkedOutcome({ providerRef: 'p', status: 'SETTLED', amountMinor, currency }, 'p');
    expect(stated(3000, 'EUR')).toEqual({
      status: 'SETTLED',
      providerRef: 'p',
      amount: { amountMinor: '3000', currency: 'EUR' },
    });
    expect(otherMoneyThanAsked(stated('3000', 'EUR'), asked, 'p')).toBeUndefined();
    expect(otherMoneyThanAsked(checkedOutcome({ providerRef: 'p', status: 'SETTLED' }, 'p'), asked, 'p')).toBe(
      undefined,
    );
    expect(otherMoneyThanAsked(stated('300', 'EUR'), asked, 'p')).toBe(
      'p settled 300 EUR (minor units) of a payment of 3000 EUR',
    );
    expect(otherMoneyThanAsked(stated('3000', 'USD'), asked, 'p')).toBe(
      'p settled 3000 USD (minor units) of a payment of 3000 EUR',
    );
    // Only a settlement states what moved: a decline's amount is not read.
    const declined = checkedOutcome({ providerRef: 'p', status: 'DECLINED', amountMinor: '1', currency: 'EUR' }, 'p');
    expect(otherMoneyThanAsked(declined, asked, 'p')).toBeUndefined();
  });

  it('keeps the money a refund states, and believes it only when it is what was asked', () => {
    const asked = { amountMinor: '1250', currency: 'EUR' };
    const refunded = (amountMinor: unknown, currency: unknown) =>
      checkedRefund({ providerRef: 'r', status: 'SUCCEEDED', amountMinor, currency }, 'p');
    expect(refunded('1250', 'EUR')).toEqual({
      status: 'SUCCEEDED',
      providerRef: 'r',
      amount: { amountMinor: '1250', currency: 'EUR' },
    });
    expect(otherMoneyThanAsked(refunded(1250, 'EUR'), asked, 'p')).toBeUndefined();
    expect(otherMoneyThanAsked(checkedRefund({ providerRef: 'r', status: 'SUCCEEDED' }, 'p'), asked, 'p')).toBe(
      undefined,
    );
    expect(otherMoneyThanAsked(refunded('12500', 'EUR'), asked, 'p')).toBe(
      'p refunded 12500 EUR (minor units) of a refund of 1250 EUR',
    );
    expect(otherMoneyThanAsked(refunded('1250', 'GBP'), asked, 'p')).toBeDefined();
    // Stated badly, or half stated, it is no answer; a failure's amount is not read.
    for (const [amountMinor, currency] of [
      ['12.50', 'EUR'],
      ['1250', undefined],
      [undefined, 'EUR'],
      ['4242424242424242', 'EUR'],
    ]) {
      expect(() => refunded(amountMinor, currency), `${amountMinor} ${currency}`).toThrow(MalformedAnswerError);
    }
    const failed = checkedRefund({ providerRef: 'r', status: 'FAILED', amountMinor: '1', currency: 'EUR' }, 'p');
    expect(otherMoneyThanAsked(failed, asked, 'p')).toBeUndefined();
  });

  it('keeps a decline or refund failure code that reads as one of our unknown outcomes under declined:', () => {
    const declined = (declineCode: string) =>
      checkedOutcome({ providerRef: 'p_1', status: 'DECLINED', declineCode }, 'p');
    expect(declined('provider_unavailable')).toMatchObject({ code: 'declined:provider_unavailable' });
    expect(declined('outcome_unknown:timeout')).toMatchObject({ code: 'declined:outcome_unknown:timeout' });
    expect(declined('do_not_honor')).toMatchObject({ code: 'do_not_honor' });
    expect(checkedRefund({ providerRef: 'r_1', status: 'FAILED', failureCode: 'outcome_unknown' }, 'p')).toMatchObject({
      code: 'declined:outcome_unknown',
    });
  });

  it('keeps a numeric reference, though it passes the Luhn check, as many providers give them', () => {
    expect(checkedOutcome({ providerRef: '8535296650153316', status: 'SETTLED' }, 'p')).toEqual({
      status: 'SETTLED',
      providerRef: '8535296650153316',
    });
  });

  it('of a refund or a ledger keeps no bank account number, nor a card number for a failure code', () => {
    expect(() => checkedRefund({ providerRef: 'DE89370400440532013000', status: 'SUCCEEDED' }, 'p')).toThrow(
      MalformedAnswerError,
    );
    expect(() =>
      checkedRefund({ providerRef: 'r', status: 'FAILED', failureCode: '5555-5555-5555-4444' }, 'p'),
    ).toThrow(MalformedAnswerError);
    expect(checkedRefund({ providerRef: 'r', status: 'FAILED', failureCode: 'payment_returned' }, 'p')).toEqual({
      status: 'FAILED',
      providerRef: 'r',
      code: 'payment_returned',
    });
    const item = {
      direction: 'DEBIT',
      amountMinor: '100',
      currency: 'EUR',
      status: 'SETTLED',
      createdAt: '2026-12-02T10:00:00Z',
    };
    expect(checkedLedgerPage({ items: [{ ...item, providerRef: 'pay_1' }], nextCursor: null }, 'p').items).toHaveLength(
      1,
    );
    expect(() =>
      checkedLedgerPage({ items: [{ ...item, providerRef: 'GB82WEST12345698765432' }], nextCursor: null }, 'p'),
    ).toThrow(MalformedAnswerError);
  });

  it('in a callback names a payment only when every part of the name is well formed', () => {
    const reference = { tenantId, orderRef: 'o-1', instructionRef: 'i-1' };
    expect(callbackReferenceOf('pay_1', reference)).toEqual({ ...reference, providerRef: 'pay_1' });
    // Echoed in capitals (a .NET Guid): the same tenant, as its orders' workflows are named.
    expect(callbackReferenceOf('pay_1', { ...reference, tenantId: tenantId.toUpperCase() })).toEqual({
      ...reference,
      providerRef: 'pay_1',
    });
    expect(callbackReferenceOf('x'.repeat(129), reference)).toBeUndefined();
    expect(callbackReferenceOf('pay_1', { ...reference, tenantId: 'not-a-uuid' })).toBeUndefined();
    expect(callbackReferenceOf('pay_1', { ...reference, orderRef: 'has space' })).toBeUndefined();
    expect(callbackReferenceOf('pay_1', { ...reference, instructionRef: 7 })).toBeUndefined();
    expect(callbackReferenceOf('pay_1', undefined)).toBeUndefined();
  });

  it('in a callback is a final result only when settled or declined, and well formed', () => {
    expect(finalResult({ providerRef: 'p', status: 'SETTLED' }, 'p')).toEqual({
      kind: 'payment',
      result: { status: 'SETTLED', providerRef: 'p' },
    });
    expect(finalResult({ providerRef: 'p', status: 'PENDING' }, 'p')).toBeUndefined();
    expect(finalResult({ providerRef: 'p', status: 'DECLINED', declineCode: 'c'.repeat(65) }, 'p')).toBeUndefined();
  });

  it('tells a payment taken back after it settled: a return with its code, a chargeback with its reason', () => {
    expect(finalResult({ providerRef: 'p', status: 'RETURNED', returnCode: 'insufficient_funds' }, 'p')).toEqual({
      kind: 'payment',
      result: { status: 'RETURNED', providerRef: 'p', kind: 'RETURN', code: 'insufficient_funds' },
    });
    expect(finalResult({ providerRef: 'p', status: 'CHARGED_BACK', reason: 'fraudulent' }, 'p')).toEqual({
      kind: 'payment',
      result: { status: 'RETURNED', providerRef: 'p', kind: 'CHARGEBACK', code: 'fraudulent' },
    });
    // A reversal without a well-formed code is no answer.
    expect(finalResult({ providerRef: 'p', status: 'RETURNED' }, 'p')).toBeUndefined();
    expect(finalResult({ providerRef: 'p', status: 'RETURNED', returnCode: 'has space' }, 'p')).toBeUndefined();
  });

  it('tells a refund’s result apart from a payment’s, by its object', () => {
    expect(finalResult({ object: 'refund', providerRef: 'r', status: 'SUCCEEDED' }, 'p')).toEqual({
      kind: 'refund',
      result: { status: 'SUCCEEDED', providerRef: 'r' },
    });
    expect(
      finalResult({ object: 'refund', providerRef: 'r', status: 'FAILED', failureCode: 'payment_returned' }, 'p'),
    ).toEqual({
      kind: 'refund',
      result: { status: 'FAILED', providerRef: 'r', code: 'payment_returned' },
    });
    expect(finalResult({ object: 'refund', providerRef: 'r', status: 'PENDING' }, 'p')).toBeUndefined();
    // A refund's status is never a payment's.
    expect(finalResult({ object: 'refund', providerRef: 'r', status: 'SETTLED' }, 'p')).toBeUndefined();
  });

  it('takes a bank account’s mask only if it shows no more than its country, check digits and last four', () => {
    const tokenised = (maskedIban: string) =>
      checkedTokenised({ token: 'tok_bank_1', paymentMethod: 'BANK_DEBIT', display: { maskedIban } }, 'the bank');
    for (const mask of ['FR76 •••• 0189', 'GB33 **** **** **** 5555', 'XK05XXXXXXXXXXXX1234', '•••• 1234'])
      expect(tokenised(mask).display.maskedIban).toBe(mask);
    // A bare domestic account number, an IBAN one character off, one masked in its middle only.
    for (const unmasked of ['370400440532013000', 'DE89 3704 0044 0532 0130 01', 'FR76 3000 6000 0112 •••• 0189'])
      expect(() => tokenised(unmasked), unmasked).toThrow(/answered a token that is not one/);
  });

  it('has its token shown by its last four characters only when they are a third of it at most', () => {
    expect(tokenHint('tok_1a2b3c4d5e6f')).toBe('…5e6f');
    expect(tokenHint('tok_1a2b3c4d')).toBe('…3c4d');
    for (const short of ['tok_1a2b3c4', 'ab12', 'x']) expect(tokenHint(short), short).toBe('…');
  });
});
