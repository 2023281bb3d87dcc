import { describe, expect, it } from 'vitest';
import {
  asBeforeRetired,
  MAX_RETIRED_SECRETS,
  retiredAfterChange,
  takenUnderRetired,
  type RetiredSecret,
} from '../../domain/retired-secrets.js';

const card = { callbackSecret: 'apiKey', reversalWindowDays: 120 };
const now = new Date('2027-03-01T00:00:00Z');
const retired = (value: string, until: string, retiredAt = '2027-01-01T00:00:00Z'): RetiredSecret => ({
  field: 'apiKey',
  value,
  retiredAt,
  until,
});

describe('callback secrets replaced', () => {
  it('keeps the old callback secret for the app’s reversal window and a week, and nothing when it did not change', () => {
    expect(retiredAfterChange(card, { apiKey: 'old' }, { apiKey: 'new' }, [], now)).toEqual([
      retired('old', '2027-07-06T00:00:00.000Z', now.toISOString()),
    ]);
    expect(retiredAfterChange(card, { apiKey: 'same' }, { apiKey: 'same' }, [], now)).toEqual([]);
    // An app signing no callbacks keeps none.
    expect(retiredAfterChange({ reversalWindowDays: 0 }, { apiKey: 'old' }, { apiKey: 'new' }, [], now)).toEqual([]);
  });

  it('drops those out of time and one given back, and keeps the newest few', () => {
    const kept = [retired('a', '2027-02-01T00:00:00Z'), retired('b', '2027-05-01T00:00:00Z')];
    expect(retiredAfterChange(card, { apiKey: 'x' }, { apiKey: 'x' }, kept, now)).toEqual([kept[1]]);
    // Back to b: current again, not retired; x retired.
    expect(retiredAfterChange(card, { apiKey: 'x' }, { apiKey: 'b' }, kept, now).map((r) => r.value)).toEqual(['x']);
    const many = Array.from({ length: MAX_RETIRED_SECRETS }, (_, n) => retired(`k${n}`, '2027-05-01T00:00:00Z'));
    expect(retiredAfterChange(card, { apiKey: 'x' }, { apiKey: 'y' }, many, now).map((r) => r.value)).toEqual([
      'x',
      ...many.slice(0, MAX_RETIRED_SECRETS - 1).map((r) => r.value),
    ]);
  });

  it('keeps none once the tenant revokes them', () => {
    const kept = [retired('b', '2027-05-01T00:00:00Z')];
    expect(retiredAfterChange(card, { apiKey: 'x' }, { apiKey: 'y' }, kept, now, true)).toEqual([]);
  });

  it('takes only a payment’s return or chargeback under a replaced secret', () => {
    expect(takenUnderRetired({ kind: 'payment', result: { status: 'RETURNED' } })).toBe(true);
    for (const status of ['SETTLED', 'DECLINED'])
      expect(takenUnderRetired({ kind: 'payment', result: { status } })).toBe(false);
    for (const status of ['SUCCEEDED', 'FAILED'])
      expect(takenUnderRetired({ kind: 'refund', result: { status } })).toBe(false);
  });

  it('gives the installation as it was before each replaced secret still in time', () => {
    const installation = { configuration: { statementDescriptor: 'shop' }, secrets: { apiKey: 'new' } };
    const kept = [retired('old', '2027-05-01T00:00:00Z'), retired('older', '2027-02-01T00:00:00Z')];
    expect(asBeforeRetired(installation, kept, now)).toEqual([
      {
        installation: { configuration: { statementDescriptor: 'shop' }, secrets: { apiKey: 'old' } },
        retiredAt: new Date('2027-01-01T00:00:00Z'),
      },
    ]);
  });
});
