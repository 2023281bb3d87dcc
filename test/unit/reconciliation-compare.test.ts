import { describe, expect, it } from 'vitest';
import type { ProviderPayment } from '../../apps/provider-ledger.js';
import { comparePayments, type OurPayment } from '../../reconciliation/compare.js';
import { shownPayment } from '../../reconciliation/reconciliation.js';
import { wholeReferences } from '../../reconciliation/run-entries.js';

const ours = (providerRef: string, fields: Partial<OurPayment> = {}): OurPayment => ({
  providerRef,
  orderRef: 'o',
  instructionRef: providerRef,
  direction: 'DEBIT',
  amountMinor: '1000',
  currency: 'EUR',
  status: 'SETTLED',
  ...fields,
});
const theirs = (providerRef: string, fields: Partial<ProviderPayment> = {}): ProviderPayment => ({
  providerRef,
  direction: 'DEBIT',
  amountMinor: '1000',
  currency: 'EUR',
  status: 'SETTLED',
  createdAt: '2027-01-01T00:00:00Z',
  ...fields,
});
const kinds = (o: OurPayment[], t: ProviderPayment[]) => comparePayments(o, t).map((m) => `${m.kind}:${m.providerRef}`);

describe('comparing our payments with a provider’s ledger', () => {
  it('finds nothing where both agree, returns included', () => {
    expect(
      kinds([ours('a'), ours('b', { status: 'RETURNED' })], [theirs('a'), theirs('b', { status: 'RETURNED' })]),
    ).toEqual([]);
    expect(kinds([ours('c', { status: 'RETURNED' })], [theirs('c', { status: 'CHARGED_BACK' })])).toEqual([]);
  });

  it('names a currency before an amount, and a status beside either', () => {
    expect(kinds([ours('a')], [theirs('a', { currency: 'GBP', amountMinor: '5' })])).toEqual(['currency:a']);
    expect(kinds([ours('a')], [theirs('a', { amountMinor: '999', status: 'RETURNED' })])).toEqual([
      'amount:a',
      'status:a',
    ]);
    expect(kinds([ours('a', { status: 'FAILED' })], [theirs('a')])).toEqual(['status:a']);
  });

  it('reads amounts as numbers, and money moved the other way as a different amount', () => {
    expect(kinds([ours('a', { amountMinor: '100' })], [theirs('a', { amountMinor: '0100' })])).toEqual([]);
    expect(kinds([ours('a')], [theirs('a', { direction: 'CREDIT' })])).toEqual(['amount:a']);
  });

  it('matches ours with payments made before the period, but holds only the period’s own as extra', () => {
    const before = theirs('old', { createdAt: '2026-12-30T00:00:00Z' });
    const inPeriod = (t: ProviderPayment) => t.createdAt >= '2027-01-01';
    expect(comparePayments([ours('old')], [before], inPeriod)).toEqual([]);
    expect(comparePayments([], [before, theirs('new')], inPeriod).map((m) => m.providerRef)).toEqual(['new']);
  });

  it('tells a reference more than one instruction holds, whatever else it finds of its payment', () => {
    expect(kinds([ours('a', { shared: true })], [theirs('a')])).toEqual(['shared:a']);
    expect(kinds([ours('a', { shared: true })], [theirs('a', { amountMinor: '5' })])).toEqual(['shared:a', 'amount:a']);
    expect(kinds([ours('a', { shared: true })], [])).toEqual(['shared:a', 'missing:a']);
  });

  it('waits for a payment still moving on either side', () => {
    expect(kinds([ours('a', { status: 'PROCESSING' })], [theirs('a')])).toEqual([]);
    expect(kinds([ours('a')], [theirs('a', { status: 'PENDING' })])).toEqual([]);
  });

  it('holds the provider to money kept: a declined or returned payment of no instruction is nothing', () => {
    expect(kinds([], [theirs('x', { status: 'DECLINED' }), theirs('y', { status: 'RETURNED' }), theirs('z')])).toEqual([
      'extra:z',
    ]);
    // Ours without the provider's record: only money we think moved is missing.
    expect(kinds([ours('m'), ours('n', { status: 'LATE' })], [])).toEqual(['missing:m']);
  });
});

describe('a payment as a difference shows it', () => {
  it('gives its amount in its currency’s decimals, and one in a currency we do not pay in as the minor units sent', () => {
    expect(shownPayment(theirs('p', { amountMinor: '12345', currency: 'EUR' })).amount).toBe('123.45');
    expect(shownPayment(theirs('p', { amountMinor: '12345', currency: 'JPY' })).amount).toBe('12345');
    expect(shownPayment(theirs('p', { amountMinor: '12345', currency: 'KWD' })).amount).toBe('12.345');
    // A fund code (not payable) and a code no one issued: never read as if it had no decimals.
    for (const currency of ['USN', 'QQQ'])
      expect(shownPayment(theirs('p', { amountMinor: '12345', currency })).amount, currency).toBe('12345 minor units');
  });
});

describe('a page of a run’s entries, read in order of reference', () => {
  const entries = (...refs: string[]) => refs.map((ref) => ({ provider_ref: ref }));
  it('keeps only whole references when it is full: the last may have its other side on the next page', () => {
    expect(wholeReferences(entries('a', 'a', 'b'), 3)).toEqual(entries('a', 'a'));
    expect(wholeReferences(entries('a', 'b', 'b'), 3)).toEqual(entries('a'));
    expect(wholeReferences(entries('a', 'b', 'c', 'c', 'd'), 5)).toEqual(entries('a', 'b', 'c', 'c'));
  });
  it('keeps every entry of the last page, which is not full', () => {
    expect(wholeReferences(entries('a', 'a', 'b'), 5)).toEqual(entries('a', 'a', 'b'));
    expect(wholeReferences([], 3)).toEqual([]);
  });
});
