import { describe, expect, it } from 'vitest';
import { findApp } from '../../domain/app-catalog.js';
import {
  asInReplacedTimes,
  MAX_ENDED_SECRET_TIMES,
  MAX_RETIRED_SECRETS,
  replacedTimesShown,
  secretIsAccount,
  takenUnderRetired,
  timesAfterChange,
  type InstallationDates,
  type SecretTime,
} from '../../domain/retired-secrets.js';

const card = { callbackSecret: 'apiKey', reversalWindowDays: 120, keyScope: ['apiKey'] };
const installedAt = new Date('2026-12-01T00:00:00Z');
const day = (n: number) => new Date(Date.parse('2027-03-01T00:00:00Z') + n * 86_400_000);
/** The times kept after each change in turn from `first`, the nth on day n (or the day given). */
function changes(first: string, ...then: (string | { to: string; on?: number; revoke?: boolean })[]) {
  let times: SecretTime[] = [];
  let current = first;
  then.forEach((step, n) => {
    const { to, on = n, revoke = false } = typeof step === 'string' ? { to: step } : step;
    times = timesAfterChange(card, { apiKey: current }, { apiKey: to }, times, day(on), { installedAt }, revoke);
    current = to;
  });
  return times;
}
const replacedTimes = (times: SecretTime[], current: string, on: number) =>
  asInReplacedTimes(card, { configuration: {}, secrets: { apiKey: current } }, times, day(on)).map((t) => [
    t.installation.secrets.apiKey,
    t.from.toISOString(),
    t.to.toISOString(),
  ]);

describe('a callback secret’s times', () => {
  it('keeps the time of the value replaced, from the installation, and begins the new one’s', () => {
    expect(changes('old', 'new')).toEqual([
      { field: 'apiKey', value: 'old', from: installedAt.toISOString(), to: day(0).toISOString() },
      { field: 'apiKey', value: 'new', from: day(0).toISOString() },
    ]);
    // Nothing changed, nothing kept; nor by an app signing no callbacks, nor one that only pays out.
    expect(changes('same', 'same')).toEqual([]);
    const [before, after] = [{ apiKey: 'old' }, { apiKey: 'new' }];
    const dates = { installedAt };
    expect(timesAfterChange({ reversalWindowDays: 120, keyScope: [] }, before, after, [], day(0), dates)).toEqual([]);
    expect(timesAfterChange({ ...card, reversalWindowDays: 0 }, before, after, [], day(0), dates)).toEqual([]);
  });

  it('begins an untimed value’s time at its key scope’s last change where the secret is that scope alone, else at the installation', () => {
    const [before, after] = [{ apiKey: 'old' }, { apiKey: 'new' }];
    const keyScopeChangedAt = new Date('2027-01-15T00:00:00Z');
    const replacedFrom = (app: typeof card, dates: InstallationDates) =>
      timesAfterChange(app, before, after, [], day(0), dates).find((t) => t.value === 'old')?.from;
    // A sandbox merchant's key: the last change of its scope was the last of the key.
    expect(replacedFrom(card, { installedAt, keyScopeChangedAt })).toBe(keyScopeChangedAt.toISOString());
    expect(replacedFrom(card, { installedAt, keyScopeChangedAt: null })).toBe(installedAt.toISOString());
    // A change dated before the installation (another host's clock): the installation bounds it.
    const early = new Date(installedAt.getTime() - 1000);
    expect(replacedFrom(card, { installedAt, keyScopeChangedAt: early })).toBe(installedAt.toISOString());
    // A scope of more than the secret, or without it (a connector's url): the scope moved without the key.
    expect(replacedFrom({ ...card, keyScope: ['apiKey', 'merchantId'] }, { installedAt, keyScopeChangedAt })).toBe(
      installedAt.toISOString(),
    );
    expect(replacedFrom({ ...card, keyScope: ['url'] }, { installedAt, keyScopeChangedAt })).toBe(
      installedAt.toISOString(),
    );
    // A time kept says when the value began, whatever the scope's dates.
    const kept = [{ field: 'apiKey', value: 'old', from: day(-3).toISOString() }];
    expect(timesAfterChange(card, before, after, kept, day(0), { installedAt, keyScopeChangedAt })[0]?.from).toBe(
      day(-3).toISOString(),
    );
  });

  it('has each replaced value verify for its own times only, a value given back for each of its times', () => {
    const times = changes('a', 'b', 'a', 'c');
    expect(replacedTimes(times, 'c', 3)).toEqual([
      ['a', day(1).toISOString(), day(2).toISOString()],
      ['b', day(0).toISOString(), day(1).toISOString()],
      ['a', installedAt.toISOString(), day(0).toISOString()],
    ]);
  });

  it('shows the tenant each replaced value’s times still verifying, never a value, the latest replaced first', () => {
    const times = changes('a', 'b', 'a', 'c');
    const iso = (n: number) => day(n).toISOString();
    expect(replacedTimesShown(card, times, day(3))).toEqual([
      { setting: 'apiKey', from: iso(1), replacedAt: iso(2), verifiesUntil: iso(129) },
      { setting: 'apiKey', from: iso(0), replacedAt: iso(1), verifiesUntil: iso(128) },
      { setting: 'apiKey', from: installedAt.toISOString(), replacedAt: iso(0), verifiesUntil: iso(127) },
    ]);
    // Out of time, not shown; a value given back is current again, and its earlier times are not shown as replaced.
    expect(replacedTimesShown(card, times, day(128)).map((t) => t.replacedAt)).toEqual([iso(2)]);
    expect(replacedTimesShown(card, changes('a', 'b', 'a'), day(2)).map((t) => t.replacedAt)).toEqual([iso(1)]);
  });

  it('verifies with a replaced value for the app’s reversal window and a week after its time ended', () => {
    const times = changes('a', 'b');
    expect(replacedTimes(times, 'b', 126).map(([value]) => value)).toEqual(['a']);
    expect(replacedTimes(times, 'b', 127)).toEqual([]);
    // Dropped at the next change once out of time.
    expect(changes('a', 'b', { to: 'c', on: 128 }).map((t) => t.value)).toEqual(['b', 'c']);
  });

  it('keeps the latest replaced values only', () => {
    const values = Array.from({ length: MAX_RETIRED_SECRETS + 2 }, (_, n) => `k${n + 1}`);
    const times = changes('k0', ...values);
    const replaced = new Set(times.filter((t) => t.to !== undefined).map((t) => t.value));
    expect([...replaced].sort()).toEqual(values.slice(-MAX_RETIRED_SECRETS - 1, -1).sort());
  });

  it('keeps the latest ended times only, however often two keys take turns', () => {
    const turns = Array.from({ length: 3 * MAX_ENDED_SECRET_TIMES }, (_, n) => (n % 2 === 0 ? 'b' : 'a'));
    const times = changes('a', ...turns);
    const ended = times.filter((t) => t.to !== undefined);
    expect(ended).toHaveLength(MAX_ENDED_SECRET_TIMES);
    const last = turns.length - 1;
    expect(ended.map((t) => t.to).sort()).toEqual(
      Array.from({ length: MAX_ENDED_SECRET_TIMES }, (_, n) => day(last - n).toISOString()).sort(),
    );
    expect(times.filter((t) => t.to === undefined)).toEqual([
      { field: 'apiKey', value: turns[last], from: day(last).toISOString() },
    ]);
  });

  it('keeps no replaced value once the tenant revokes them, and the current one’s time still', () => {
    const times = changes('a', 'b', { to: 'c', revoke: true });
    expect(times).toEqual([{ field: 'apiKey', value: 'c', from: day(1).toISOString() }]);
    // Replaced later, c covers its own time, not the revoked ones'.
    expect(replacedTimes(changes('a', 'b', { to: 'c', revoke: true }, 'd'), 'd', 3)).toEqual([
      ['c', day(1).toISOString(), day(2).toISOString()],
    ]);
  });

  it('keeps a value given back its earlier times, through a revoke and outside the latest few', () => {
    // Revoked while a is current again: b goes, a's first time stays a's.
    const revoked = changes('a', 'b', 'a', { to: 'a', revoke: true }, 'c');
    expect(replacedTimes(revoked, 'c', 4)).toEqual([
      ['a', day(1).toISOString(), day(3).toISOString()],
      ['a', installedAt.toISOString(), day(0).toISOString()],
    ]);
    // k0 given back after five others: they are the five kept, and k0's first time is k0's own.
    const values = ['k1', 'k2', 'k3', 'k4', 'k5'];
    const times = changes('k0', ...values, 'k0');
    expect(new Set(times.map((t) => t.value))).toEqual(new Set(['k0', ...values]));
    expect(times.filter((t) => t.value === 'k0')).toHaveLength(2);
  });

  it('takes only a payment’s return or chargeback under a replaced secret', () => {
    const returned = {
      kind: 'payment',
      result: { status: 'RETURNED', providerRef: 'p-1', code: 'insufficient_funds' },
    };
    // Marked, so that it is never collected again.
    expect(takenUnderRetired(returned)).toEqual({
      kind: 'payment',
      result: { status: 'RETURNED', providerRef: 'p-1', code: 'insufficient_funds', underReplacedSecret: true },
    });
    expect(returned.result).not.toHaveProperty('underReplacedSecret');
    for (const status of ['SETTLED', 'DECLINED'])
      expect(takenUnderRetired({ kind: 'payment', result: { status } })).toBeUndefined();
    for (const status of ['SUCCEEDED', 'FAILED'])
      expect(takenUnderRetired({ kind: 'refund', result: { status } })).toBeUndefined();
  });

  it('ends mandates under a replaced secret only where the secret is the provider account', () => {
    // A sandbox key is its merchant account: the old account's mandates end there, told under it.
    for (const appId of ['SANDBOX_BANK', 'SANDBOX_CARD']) expect(secretIsAccount(findApp(appId)!)).toBe(true);
    // A connector's signing secret is rotated on the same account, whose mandates go on.
    expect(secretIsAccount(findApp('HTTP_CONNECTOR')!)).toBe(false);
    expect(secretIsAccount({ keyScope: ['apiKey'] })).toBe(false);
  });
});
