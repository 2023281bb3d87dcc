import type { AppDefinition } from './app-catalog.js';
import type { InstalledApp } from './installed-app.js';

/**
 * A callback secret (the catalog's `callbackSecret`) a tenant replaced. The provider keeps signing
 * the news of payments made under it with it (a sandbox merchant's key is its account: a chargeback
 * of an old payment comes from the old account), so until `until` it still verifies a return or
 * chargeback of a collection the instruction it names settled while it was current (from `since`
 * to `retiredAt`): nothing else, so that a replaced key that leaked settles nothing, and takes back
 * no payment settled before or after its time. A payment or refund whose result was still to come
 * at the change is asked about under the current secret (its polls).
 */
export interface RetiredSecret {
  field: string;
  value: string;
  /** When it became current: the replacement before it, or the installation. */
  since: string;
  retiredAt: string;
  until: string;
}

/** Days a replaced secret outlives its app's reversal window: a provider's retries of a late callback. */
export const RETIRED_SECRET_GRACE_DAYS = 7;
/** The most replaced secrets an installation keeps, the newest: each is another key a forger may hold. */
export const MAX_RETIRED_SECRETS = 5;

const DAY_MS = 86_400_000;

/**
 * The replaced secrets an installation keeps after a configuration change from `before` to `after`
 * (its secrets): those still in time, and the callback secret's old value if it changed. A value
 * given back becomes current again, no longer retired.
 */
export function retiredAfterChange(
  app: Pick<AppDefinition, 'callbackSecret' | 'reversalWindowDays'>,
  before: Record<string, string>,
  after: Record<string, string>,
  kept: readonly RetiredSecret[],
  now: Date,
  /** When the current secret became current if no replacement kept says: the installation's time. */
  installedAt: Date,
  /** The tenant's word that the replaced secrets leaked: none is kept, the one replaced now neither. */
  revoke = false,
): RetiredSecret[] {
  // An app that only pays out has no collection to be taken back.
  if (revoke || app.reversalWindowDays === 0) return [];
  const field = app.callbackSecret;
  const live = kept.filter(
    (r) => Date.parse(r.until) > now.getTime() && !(r.field === field && r.value === after[r.field]),
  );
  const old = field === undefined ? undefined : before[field];
  if (field === undefined || old === undefined || old === after[field]) return live.slice(0, MAX_RETIRED_SECRETS);
  const until = new Date(now.getTime() + (app.reversalWindowDays + RETIRED_SECRET_GRACE_DAYS) * DAY_MS);
  const since = kept.find((r) => r.field === field)?.retiredAt ?? installedAt.toISOString();
  const retired = { field, value: old, since, retiredAt: now.toISOString(), until: until.toISOString() };
  return [retired, ...live].slice(0, MAX_RETIRED_SECRETS);
}

/** The installation as it was before each replaced secret still in time, newest first, to verify an old callback with. */
export function asBeforeRetired(
  installation: InstalledApp,
  retired: readonly RetiredSecret[],
  now: Date,
): { installation: InstalledApp; since: Date; retiredAt: Date }[] {
  return retired
    .filter((r) => Date.parse(r.until) > now.getTime())
    .map((r) => ({
      installation: { ...installation, secrets: { ...installation.secrets, [r.field]: r.value } },
      since: new Date(r.since),
      retiredAt: new Date(r.retiredAt),
    }));
}

/** Whether a callback verified only by a replaced secret may be taken: a payment's return or chargeback. */
export function takenUnderRetired(verified: { kind: string; result: { status: string } }): boolean {
  return verified.kind === 'payment' && verified.result.status === 'RETURNED';
}
