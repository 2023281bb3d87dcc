import { describe, expect, it } from 'vitest';
import { DomainValidationError } from '../../domain/errors.js';
import { displayAmount, formatAmount, parseAmount } from '../../domain/money.js';

describe('parseAmount', () => {
  it.each([
    ['125.50', 'EUR', 12550n],
    ['125.5', 'EUR', 12550n],
    ['0.01', 'EUR', 1n],
    ['1000', 'JPY', 1000n],
    ['1.234', 'KWD', 1234n],
    ['90071992547409.91', 'USD', 9007199254740991n], // the largest amount: exact, no float
    ['9007199254740.991', 'KWD', 9007199254740991n],
  ])('%s %s is %s minor units', (amount, currency, minor) => {
    expect(parseAmount(amount, currency)).toBe(minor);
  });

  it.each([
    ['1.005', 'EUR', 'invalid_amount_precision'],
    ['10.5', 'JPY', 'invalid_amount_precision'],
    ['0', 'EUR', 'invalid_amount'],
    ['0.00', 'EUR', 'invalid_amount'],
    ['-1.00', 'EUR', 'invalid_amount'],
    ['1e3', 'EUR', 'invalid_amount'],
    ['01.00', 'EUR', 'invalid_amount'],
    ['90071992547409.92', 'USD', 'amount_too_large'],
    ['999999999999999999.00', 'EUR', 'amount_too_large'], // beyond a PostgreSQL bigint
    ['1.00', 'XXX', 'invalid_currency'],
    ['1.00', 'XAU', 'invalid_currency'],
    ['1.00', 'XDR', 'invalid_currency'],
    ['1.00', 'USN', 'invalid_currency'],
    ['1.00', 'CLF', 'invalid_currency'],
    ['1.00', 'BOV', 'invalid_currency'],
    ['1.00', 'ABC', 'invalid_currency'],
  ])('rejects %s %s with %s', (amount, currency, code) => {
    expect(() => parseAmount(amount, currency)).toThrowError(DomainValidationError);
    try {
      parseAmount(amount, currency);
    } catch (err) {
      expect((err as DomainValidationError).code).toBe(code);
    }
  });
});

describe('formatAmount', () => {
  it.each([
    [12550n, 'EUR', '125.50'],
    [1n, 'EUR', '0.01'],
    [1000n, 'JPY', '1000'],
    [1234n, 'KWD', '1.234'],
    ['9007199254740993', 'USD', '90071992547409.93'], // formatting stays exact past 2^53
  ])('%s %s is %s', (minor, currency, text) => {
    expect(formatAmount(minor, currency)).toBe(text);
  });

  it('round-trips with parseAmount', () => {
    for (const [amount, currency] of [
      ['0.07', 'GBP'],
      ['5', 'CLP'],
      ['12.345', 'BHD'],
      ['999999.99', 'EUR'],
    ]) {
      expect(formatAmount(parseAmount(amount, currency), currency)).toBe(amount);
    }
  });
});

describe('displayAmount', () => {
  it('shows the decimal places ISO 4217 gives the currency, where Intl would round to its own', () => {
    expect(displayAmount(123456n, 'HUF', 'en')).toBe('HUF\u00a01,234.56');
    expect(displayAmount('40', 'HUF', 'en')).toBe('HUF\u00a00.40');
    expect(displayAmount(1500n, 'IQD', 'en')).toBe('IQD\u00a01.500');
    expect(displayAmount(1000n, 'JPY', 'en')).toBe('¥1,000');
    expect(displayAmount(123450n, 'EUR', 'fr')).toBe('1\u202f234,50\u00a0€');
  });

  it('keeps every digit of an amount no float holds exactly', () => {
    expect(displayAmount(9007199254740993n, 'USD', 'en')).toBe('$90,071,992,547,409.93');
  });
});
