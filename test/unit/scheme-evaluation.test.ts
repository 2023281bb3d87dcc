import { describe, expect, it } from 'vitest';
import { compareDecimals, compareToDecimal, evaluateScheme, type SchemeRule } from '../../domain/scheme.js';

const card = (appId: string, priority: number) => ({ appId, paymentMethods: ['CARD' as const], priority });

function methods(rules: SchemeRule[], amountMinor: bigint, currency = 'EUR', country = 'FR') {
  return evaluateScheme(rules, { amountMinor, currency, country }).options.map((o) => `${o.paymentMethod}:${o.appId}`);
}

describe('evaluateScheme', () => {
  const bounded: SchemeRule[] = [
    { currencies: ['EUR'], countries: [], minAmount: '10.00', maxAmount: '100.00', options: [card('A', 1)] },
  ];

  it.each([
    [999n, []],
    [1000n, ['CARD:A']], // the lower bound is inclusive
    [5000n, ['CARD:A']],
    [10000n, ['CARD:A']], // so is the upper one
    [10001n, []],
  ])('bounds are inclusive: %s minor units → %j', (amount, expected) => {
    expect(methods(bounded, amount)).toEqual(expected);
  });

  it('treats an empty currency or country list as any, and a missing bound as unbounded', () => {
    const rules: SchemeRule[] = [{ currencies: [], countries: [], options: [card('A', 1)] }];
    expect(methods(rules, 1n, 'JPY', 'JP')).toEqual(['CARD:A']);
    expect(methods(rules, 9_007_199_254_740_991n, 'USD', 'US')).toEqual(['CARD:A']);
  });

  it('offers an app only where the catalog says it pays, and lets a later rule match when a rule’s apps all pay elsewhere', () => {
    const bank = { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT' as const], priority: 1 };
    const rules: SchemeRule[] = [
      { currencies: [], countries: [], options: [bank] },
      { currencies: [], countries: [], options: [card('SANDBOX_CARD', 1)] },
    ];
    expect(evaluateScheme(rules, { amountMinor: 100n, currency: 'EUR', country: 'CZ' })).toMatchObject({
      ruleIndex: 0,
      options: [{ appId: 'SANDBOX_BANK' }],
    });
    expect(evaluateScheme(rules, { amountMinor: 100n, currency: 'USD', country: 'FR' })).toMatchObject({
      ruleIndex: 1,
      options: [{ appId: 'SANDBOX_CARD' }],
    });
    expect(methods([rules[0]], 100n, 'EUR', 'US')).toEqual([]);
  });

  it('lets the first matching rule win, even when a later one also matches', () => {
    const rules: SchemeRule[] = [
      { currencies: ['GBP'], countries: [], options: [card('gbp-only', 1)] },
      { currencies: ['EUR'], countries: ['DE'], options: [card('germany', 1)] },
      { currencies: ['EUR'], countries: [], options: [card('euro', 1)] },
      { currencies: [], countries: [], options: [card('fallback', 1)] },
    ];
    expect(methods(rules, 100n, 'EUR', 'DE')).toEqual(['CARD:germany']);
    expect(methods(rules, 100n, 'EUR', 'FR')).toEqual(['CARD:euro']);
    expect(methods(rules, 100n, 'USD', 'US')).toEqual(['CARD:fallback']);
    expect(evaluateScheme(rules, { amountMinor: 100n, currency: 'EUR', country: 'FR' }).ruleIndex).toBe(2);
  });

  it('answers no options, and no rule, when nothing matches', () => {
    expect(evaluateScheme(bounded, { amountMinor: 5000n, currency: 'GBP', country: 'GB' })).toEqual({
      ruleIndex: null,
      options: [],
    });
    expect(evaluateScheme([], { amountMinor: 5000n, currency: 'EUR', country: 'FR' })).toEqual({
      ruleIndex: null,
      options: [],
    });
  });

  it('gives each method to the app with the lowest priority, and lists the best first', () => {
    const rules: SchemeRule[] = [
      {
        currencies: [],
        countries: [],
        options: [
          { appId: 'cards-expensive', paymentMethods: ['CARD'], priority: 5 },
          { appId: 'bank', paymentMethods: ['BANK_DEBIT', 'CARD'], priority: 2 },
          { appId: 'cards-cheap', paymentMethods: ['CARD'], priority: 1 },
        ],
      },
    ];
    expect(methods(rules, 100n)).toEqual(['CARD:cards-cheap', 'BANK_DEBIT:bank']);
  });

  it('breaks a priority tie by the order the rule lists its options', () => {
    const rules: SchemeRule[] = [{ currencies: [], countries: [], options: [card('first', 3), card('second', 3)] }];
    expect(methods(rules, 100n)).toEqual(['CARD:first']);
  });

  it('carries a payout rule’s voucher groups onto its options', () => {
    const rules: SchemeRule[] = [
      {
        currencies: [],
        countries: [],
        voucherGroupIds: ['g1'],
        options: [{ appId: 'vouchers', paymentMethods: ['VOUCHER'], priority: 1 }],
      },
    ];
    expect(evaluateScheme(rules, { amountMinor: 100n, currency: 'EUR', country: 'FR' }).options).toEqual([
      { paymentMethod: 'VOUCHER', appId: 'vouchers', priority: 1, voucherGroupIds: ['g1'], preNotificationDays: 0 },
    ]);
  });

  it('gives a bank debit 14 days of notice unless the option says otherwise, and the others none', () => {
    const notice = (options: SchemeRule['options']) =>
      evaluateScheme([{ currencies: [], countries: [], options }], {
        amountMinor: 100n,
        currency: 'EUR',
        country: 'FR',
      }).options.map((o) => `${o.paymentMethod}:${o.preNotificationDays}`);
    expect(notice([{ appId: 'bank', paymentMethods: ['BANK_DEBIT', 'CARD'], priority: 1 }])).toEqual([
      'CARD:0',
      'BANK_DEBIT:14',
    ]);
    expect(notice([{ appId: 'bank', paymentMethods: ['BANK_DEBIT'], priority: 1, preNotificationDays: 3 }])).toEqual([
      'BANK_DEBIT:3',
    ]);
  });

  it('judges a version’s rules as written: a new version with other rules answers differently', () => {
    const version1: SchemeRule[] = [{ currencies: [], countries: [], options: [card('old', 1)] }];
    const version2: SchemeRule[] = [{ currencies: [], countries: [], options: [card('new', 1)] }];
    expect(methods(version1, 100n)).toEqual(['CARD:old']);
    expect(methods(version2, 100n)).toEqual(['CARD:new']);
  });
});

describe('compareToDecimal', () => {
  it.each([
    [1000n, 'EUR', '10', 0],
    [1000n, 'EUR', '10.00', 0],
    [1000n, 'EUR', '10.001', -1],
    [1001n, 'EUR', '10.001', 1],
    [10n, 'JPY', '10.5', -1],
    [11n, 'JPY', '10.5', 1],
    [10005n, 'KWD', '10.005', 0],
    [0n, 'EUR', '0', 0],
  ])('%s minor %s vs %s is %s', (minor, currency, bound, expected) => {
    expect(compareToDecimal(minor, currency, bound)).toBe(expected);
  });
});

describe('compareDecimals', () => {
  it.each([
    ['10', '10.00', 0],
    ['9.99', '10', -1],
    ['100000000000000000.001', '100000000000000000', 1], // beyond a float's precision
    ['0.5', '0.50', 0],
  ])('%s vs %s is %s', (a, b, expected) => {
    expect(compareDecimals(a, b)).toBe(expected);
  });
});
