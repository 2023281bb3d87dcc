import { describe, expect, it } from 'vitest';
import {
  asBeforeRetired,
  MAX_RETIRED_SECRETS,
  retiredAfterChange,
  takenUnderRetired,
  type RetiredSecret,
} from '../../domain/retired-secrets.js';

const card = { callbackSecret: 'apiKey', reversalWindowDays: 120 };
const installedAt = new Date('2026-12-01T00:00:00Z');
const now = new Date('2027-03-01T00:00:00Z');
const retired = (value: string, until: string, retiredAt = '2027-01-01T00:00:00Z'): RetiredSecret => ({
  field: 'apiKey',
  value,
  since: installedAt.toISOString(),
  retiredAt,
  until,
});
const change = (before: string, after: string, kept: RetiredSecret[] = [], revoke = false) =>
  retiredAfterChange(card, { apiKey: before }, { apiKey: after }, kept, now, installedAt, revoke);

describe('callback secrets replaced', () => {
  it('keeps the old callback secret for the app’s reversal window and a week, and nothing when it did not change', () => {
    expect(change('old', 'new')).toEqual([
      {
        field: 'apiKey',
        value: 'old',
        since: installedAt.toISOString(),
        retiredAt: now.toISOString(),
        until: '2027-07-06T00:00:00.000Z',
      },
    ]);
    expect(change('same', 'same')).toEqual([]);
    // An app signing no callbacks keeps none, nor one that only pays out (nothing of it is taken back).
    const before = { apiKey: 'old' };
    const after = { apiKey: 'new' };
    expect(retiredAfterChange({ reversalWindowDays: 120 }, before, after, [], now, installedAt)).toEqual([]);
    expect(retiredAfterChange({ ...card, reversalWindowDays: 0 }, before, after, [], now, installedAt)).toEqual([]);
  });

  it('has each replaced secret cover only its own time: from the replacement before it', () => {
    const [second, first] = change('b', 'c', change('a', 'b'));
    expect(first).toMatchObject({ value: 'a', since: installedAt.toISOString(), retiredAt: now.toISOString() });
    expect(second).toMatchObject({ value: 'b', since: first.retiredAt });
  });

  it('drops those out of time and one given back, and keeps the newest few', () => {
    const kept = [retired('a', '2027-02-01T00:00:00Z'), retired('b', '2027-05-01T00:00:00Z')];
    expect(change('x', 'x', kept)).toEqual([kept[1]]);
    // Back to b: current again, not retired; x retired.
    expect(change('x', 'b', kept).map((r) => r.value)).toEqual(['x']);
    const many = Array.from({ length: MAX_RETIRED_SECRETS }, (_, n) => retired(`k${n}`, '2027-05-01T00:00:00Z'));
    expect(change('x', 'y', many).map((r) => r.value)).toEqual([
      'x',
      ...many.slice(0, MAX_RETIRED_SECRETS - 1).map((r) => r.value),
    ]);
  });

  it('keeps none once the tenant revokes them', () => {
    expect(change('x', 'y', [retired('b', '2027-05-01T00:00:00Z')], true)).toEqual([]);
  });

  it('gives the installation as it was before each replaced secret still in time, and that secret’s time', () => {
    const installation = { configuration: { statementDescriptor: 'shop' }, secrets: { apiKey: 'new' } };
    const kept = [retired('old', '2027-05-01T00:00:00Z'), retired('older', '2027-02-01T00:00:00Z')];
    expect(asBeforeRetired(installation, kept, now)).toEqual([
      {
        installation: { configuration: { statementDescriptor: 'shop' }, secrets: { apiKey: 'old' } },
        since: installedAt,
        retiredAt: new Date('2027-01-01T00:00:00Z'),
      },
    ]);
  });

  it('takes only a payment’s return or chargeback under a replaced secret', () => {
    expect(takenUnderRetired({ kind: 'payment', result: { status: 'RETURNED' } })).toBe(true);
    for (const status of ['SETTLED', 'DECLINED'])
      expect(takenUnderRetired({ kind: 'payment', result: { status } })).toBe(false);
    for (const status of ['SUCCEEDED', 'FAILED'])
      expect(takenUnderRetired({ kind: 'refund', result: { status } })).toBe(false);
  });
});
