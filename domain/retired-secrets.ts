import { createHash } from 'node:crypto';
import type { AppDefinition } from './app-catalog.js';
import type { InstalledApp } from './installed-app.js';

/**
 * A time a value of an app's callback secret (the catalog's `callbackSecret`) was the current one,
 * from `from` to `to` (no `to`: it still is). The provider keeps signing the news of payments made
 * under a value with it (a sandbox merchant's key is its account: a chargeback of an old payment
 * comes from the old account), so a value replaced still verifies, for the app's reversal window and
 * RETIRED_SECRET_GRACE_DAYS after its time ended, a return or chargeback of a collection the
 * instruction it names settled in that time: nothing else, so that a replaced value that leaked
 * settles nothing, and takes back no payment settled outside its times. A payment or refund whose
 * result was still to come at the change is asked about under the current secret (its polls).
 * Where the secret is the account (`secretIsAccount`), it also verifies the end of a mandate made
 * under it (`madeUnderDigest`): a mandate made at the account the tenant left ends there.
 */
export interface SecretTime {
  field: string;
  value: string;
  from: string;
  to?: string;
}

/** Days a replaced secret outlives its app's reversal window: a provider's retries of a late callback. */
export const RETIRED_SECRET_GRACE_DAYS = 7;
/** The most replaced values an installation keeps, the latest replaced: each is another key a forger may hold. */
export const MAX_RETIRED_SECRETS = 5;
/**
 * The most ended times an installation keeps, the latest ended: a tenant switching between two keys
 * over and over adds a time at each change, each read by every callback an old key verifies.
 */
export const MAX_ENDED_SECRET_TIMES = 10;

const DAY_MS = 86_400_000;

type CallbackApp = Pick<AppDefinition, 'callbackSecret' | 'reversalWindowDays'>;
type ConfiguredApp = CallbackApp & Pick<AppDefinition, 'keyScope'>;

/**
 * Whether the app's callback secret is its provider account (the sandbox's merchant key, part of its
 * key scope): a replaced value is then another account, whose mandates end there and are told under
 * it. A signing secret alone (the connector's) is rotated on the same account, whose mandates go on
 * and are told under the new one: a replaced value ends none of them.
 */
export function secretIsAccount(app: Pick<AppDefinition, 'callbackSecret' | 'keyScope'>): boolean {
  return app.callbackSecret !== undefined && app.keyScope.includes(app.callbackSecret);
}

/**
 * Which value of the app's callback secret an instrument is made under (`installation`'s, where its
 * form was exchanged), as a digest salted with the instrument's id; none where the secret is not the
 * account (`secretIsAccount`: a connector's signing secret, rotated on the same account, does not say
 * where a mandate is).
 * Only the value, so that nothing else of the installation changing since makes it another. Kept
 * sealed: a short key's digest could otherwise be searched for offline in a copy of the database.
 */
export function madeUnderDigest(
  app: Pick<AppDefinition, 'appId' | 'callbackSecret' | 'keyScope'>,
  installation: InstalledApp,
  instrumentId: string,
): string | undefined {
  if (!secretIsAccount(app)) return undefined;
  const value = installation.secrets[app.callbackSecret!];
  if (value === undefined) return undefined;
  return createHash('sha256')
    .update(JSON.stringify([instrumentId, app.appId, app.callbackSecret, value]))
    .digest('hex');
}

/** When an installation began, and its key scope last changed (if it did): the bounds of an untimed value. */
export interface InstallationDates {
  installedAt: Date;
  keyScopeChangedAt?: Date | null;
}

/**
 * When the callback secret's current value began, where the installation keeps no time of it (it was
 * configured before times were kept): at its key scope's last change, where the secret is that scope
 * alone (a sandbox merchant's key: each change of the scope was one of the key); else at the
 * installation, the earliest it can have begun. A time begun too early verifies returns of payments
 * settled under an older key; a value given back in those days (K0, K1, K0 again) begins at its
 * return, and its first time is not known.
 */
function untimedFrom(app: ConfiguredApp, dates: InstallationDates): Date {
  const secretIsScope = app.keyScope.length === 1 && app.keyScope[0] === app.callbackSecret;
  const changed = secretIsScope ? dates.keyScopeChangedAt : undefined;
  return changed && changed > dates.installedAt ? changed : dates.installedAt;
}

/** How long after its time ended a replaced value still verifies. */
function keptForMs(app: CallbackApp): number {
  return (app.reversalWindowDays + RETIRED_SECRET_GRACE_DAYS) * DAY_MS;
}

/**
 * The callback secret's times an installation keeps after a configuration change from `before` to
 * `after` (its secrets): its current value's, and the replaced ones' still in time. A change ends
 * the current time (if none was kept, one begun as `untimedFrom` says) and begins the new value's; a
 * value given back begins a time of its own, its earlier ones kept. `revoke`, the tenant's word that
 * replaced values leaked: none is kept, the one replaced now neither.
 */
export function timesAfterChange(
  app: ConfiguredApp,
  before: Record<string, string>,
  after: Record<string, string>,
  kept: readonly SecretTime[],
  now: Date,
  dates: InstallationDates,
  revoke = false,
): SecretTime[] {
  const field = app.callbackSecret;
  // An app that only pays out has no collection to be taken back.
  if (field === undefined || app.reversalWindowDays === 0) return [];
  let times = kept.filter(
    (t) => t.field === field && (t.to === undefined || Date.parse(t.to) + keptForMs(app) > now.getTime()),
  );
  const [old, next] = [before[field], after[field]];
  if (old !== undefined && old !== next) {
    const current = times.find((t) => t.to === undefined);
    const lastEnded = times.reduce<string | undefined>(
      (last, t) => (t.to && (!last || t.to > last) ? t.to : last),
      undefined,
    );
    times = times.filter((t) => t !== current);
    times.push({
      field,
      value: old,
      from: current?.from ?? lastEnded ?? untimedFrom(app, dates).toISOString(),
      to: now.toISOString(),
    });
    if (next !== undefined) times.push({ field, value: next, from: now.toISOString() });
  }
  // The current value's earlier times (it was given back) are its own, whatever leaked.
  const isCurrent = (t: SecretTime) => t.to === undefined || t.value === next;
  if (revoke) return times.filter(isCurrent);
  const keptValues = new Set(replacedValues(times).slice(0, MAX_RETIRED_SECRETS));
  const ofKeptValues = times.filter((t) => isCurrent(t) || keptValues.has(t.value));
  const latestEnded = new Set(
    ofKeptValues
      .filter((t) => t.to !== undefined)
      .sort((a, b) => b.to!.localeCompare(a.to!))
      .slice(0, MAX_ENDED_SECRET_TIMES),
  );
  return ofKeptValues.filter((t) => t.to === undefined || latestEnded.has(t));
}

/** The replaced values of `times`, the latest replaced first, each once: not the current one, given back. */
export function replacedValues(times: readonly SecretTime[]): string[] {
  const current = times.find((t) => t.to === undefined)?.value;
  const ended = times.filter((t) => t.to !== undefined && t.value !== current);
  return [...new Set(ended.sort((a, b) => b.to!.localeCompare(a.to!)).map((t) => t.value))];
}

/**
 * The installation as it was in each replaced value's time still verifying, latest first, to verify
 * an old callback with; none for the current value (which verifies as the installation is).
 */
export function asInReplacedTimes(
  app: CallbackApp,
  installation: InstalledApp,
  times: readonly SecretTime[],
  now: Date,
): { installation: InstalledApp; from: Date; to: Date }[] {
  return stillVerifying(app, times, (field) => installation.secrets[field], now).map((t) => ({
    installation: { ...installation, secrets: { ...installation.secrets, [t.field]: t.value } },
    from: new Date(t.from),
    to: new Date(t.to),
  }));
}

/**
 * What a tenant is shown of its replaced secrets still verifying, latest replaced first: the setting
 * and each time (from, replaced at, verifying until), never a value.
 */
export function replacedTimesShown(
  app: CallbackApp,
  times: readonly SecretTime[],
  now: Date,
): { setting: string; from: string; replacedAt: string; verifiesUntil: string }[] {
  const current = (field: string) => times.find((t) => t.field === field && t.to === undefined)?.value;
  return stillVerifying(app, times, current, now).map((t) => ({
    setting: t.field,
    from: t.from,
    replacedAt: t.to,
    verifiesUntil: new Date(Date.parse(t.to) + keptForMs(app)).toISOString(),
  }));
}

/** The times of replaced values (not the current one, given back) still verifying, latest replaced first. */
function stillVerifying(
  app: CallbackApp,
  times: readonly SecretTime[],
  currentOf: (field: string) => string | undefined,
  now: Date,
): (SecretTime & { to: string })[] {
  return times
    .filter(
      (t): t is SecretTime & { to: string } =>
        t.to !== undefined && t.value !== currentOf(t.field) && Date.parse(t.to) + keptForMs(app) > now.getTime(),
    )
    .sort((a, b) => b.to.localeCompare(a.to));
}

/**
 * A callback verified only by a replaced secret, as it may be taken: a payment's return or
 * chargeback, marked as taken so (`Reversal.underReplacedSecret`: never collected again). Anything
 * else is not taken.
 */
export function takenUnderRetired<R extends { kind: string; result: { status: string } }>(verified: R): R | undefined {
  if (verified.kind !== 'payment' || verified.result.status !== 'RETURNED') return undefined;
  return { ...verified, result: { ...verified.result, underReplacedSecret: true } };
}
