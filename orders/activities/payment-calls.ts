import { ApplicationFailure, Context, heartbeat, log } from '@temporalio/activity';
import type { AppConnector } from '../../apps/app-connector.js';
import { otherMoneyThanAsked } from '../../apps/provider-answer.js';
import { providerCallSeconds, providerCallsPutOff } from '../../observability/metrics.js';
import { SecretOpenError } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { mandateEnded } from '../../domain/instrument.js';
import {
  ProviderRejectedError,
  type PaymentOutcome,
  type RefundOutcome,
  type StatedAmount,
} from '../../domain/payment-outcome.js';
import type { InstallationCache } from './installation-cache.js';
import type { KeyScopes, SentKey } from './key-scopes.js';
import { findApp } from '../../domain/app-catalog.js';
import { keyScopeDigest } from '../../domain/key-scope.js';
import { withinTime } from '../../domain/time-limit.js';
import type { InstrumentToken } from '../../customers/instrument-store.js';
import type { PaymentRequest } from '../../domain/payment-outcome.js';
import {
  APP_CREDENTIALS_UNREADABLE,
  APP_NOT_INSTALLED,
  OUTCOME_UNKNOWN,
  PROVIDER_CALL_PUT_OFF,
  PROVIDER_REJECTED,
  type ExecutePaymentInput,
  type ExecuteRefundInput,
  type PaymentLookupInput,
  type PaymentStatusInput,
  type RefundStatusInput,
} from '../contract/activities.js';
import { TENANT_HOSTED_APPS } from '../contract/ids.js';
import { OncePerKey } from '../../domain/once-per-key.js';
import { TenantSlots } from '../../domain/tenant-slots.js';

const HEARTBEAT_EVERY_MS = 3_000;
/** How long a call waits to read (or keep) where its key was first sent. */
const KEY_SCOPE_LIMIT_MS = 5_000;

/**
 * Of a worker's calls to tenant-hosted providers (40 at once: worker/create-worker.ts), an account's
 * tenants have at most this many under way. A tenant's provider that takes every call and answers
 * none holds each for as long as it is let (up to 30 s): without a share, its calls took every slot,
 * and every other tenant's payments on their own providers waited behind them. The worker's slots
 * went from 20 to 40 with it, so that one account alone still has the 20 it had (at 300 ms a call,
 * some 66 payments a second per worker).
 */
export const PROVIDER_CALLS_PER_ACCOUNT = 20;

/** Stored instruments as the payment activity uses them (customers/instrument-store.ts). */
export interface InstrumentTokens {
  read(tenantId: string, instrumentId: string): Promise<InstrumentToken | undefined>;
  /** Whether `idempotencyKey` holds this unsaved instrument: the first key to claim it does. */
  claim(tenantId: string, instrumentId: string, idempotencyKey: string): Promise<boolean>;
}

export interface PaymentActivityDependencies {
  apps: Map<string, AppConnector>;
  installations: InstallationCache;
  /** Where each idempotency key was first sent: a later call under it goes nowhere else. */
  keyScopes: KeyScopes;
  /** A stored instrument's token, read where the provider is called (never carried in workflow history). */
  instruments: InstrumentTokens;
  /** Each tenant's account, whose tenants share PROVIDER_CALLS_PER_ACCOUNT; without it, calls have no share. */
  accountOf?: (tenantId: string) => Promise<string>;
}

/**
 * Asks the instruction's app to move the money, with the tenant's credentials read here (never
 * from workflow input or history). Network errors and 5xx propagate and are retried by the
 * activity's retry policy with the same idempotency key; declines come back as outcomes; what no
 * retry can cure (app not installed, credentials unreadable, the provider refusing the request)
 * fails at once with a type the workflow branches on.
 */
export function createPaymentActivities({
  apps,
  installations,
  keyScopes,
  instruments,
  accountOf,
}: PaymentActivityDependencies) {
  const accountCalls = new TenantSlots(Infinity, PROVIDER_CALLS_PER_ACCOUNT);
  /** Each account's put-off calls are said at most once a minute. */
  const putOffTold = new OncePerKey(60_000);
  /** Calls made or put off while the database cannot keep their keys' destinations: said once a minute each. */
  const outageTold = new OncePerKey(60_000);

  /**
   * Runs `work` (a call to the provider and what leads to it) on one of its account's calls, when the
   * app is one a tenant hosts; when they are all under way, sends nothing and fails, put off (a
   * refusal no retry of the activity takes: the workflow calls again, its tries untouched).
   * `keyMayHaveReached`: told to the workflow with the put-off, for its next call under the key.
   */
  async function inAccountShare<T>(
    tenantId: string,
    appId: string,
    keyMayHaveReached: boolean,
    work: () => Promise<T>,
  ): Promise<T> {
    if (!accountOf || !TENANT_HOSTED_APPS.includes(appId)) return work();
    // Read once per tenant, from the database. Unread (the database away), nothing was sent: put
    // off, so that the next try is not taken for one that may have.
    let accountId: string;
    try {
      accountId = await heartbeating(() => accountOf(tenantId));
    } catch (err) {
      const error = messageOf(err);
      if (outageTold.due('account'))
        log.warn('calls put off: the tenant’s account cannot be read', { tenantId, error });
      throw putOff(`the tenant's account cannot be read (${error}): nothing was sent`, keyMayHaveReached);
    }
    if (accountCalls.refusal(accountId)) {
      providerCallsPutOff.inc({ app: appId });
      if (putOffTold.due(accountId)) {
        log.warn('calls to tenant-hosted providers put off: the account has its share under way', {
          tenantId,
          accountId,
          appId,
          share: PROVIDER_CALLS_PER_ACCOUNT,
        });
      }
      throw putOff(
        `the account has its ${PROVIDER_CALLS_PER_ACCOUNT} calls to its providers under way: nothing was sent`,
        keyMayHaveReached,
      );
    }
    accountCalls.take(accountId);
    try {
      return await work();
    } finally {
      accountCalls.release(accountId);
    }
  }

  /**
   * The request as the provider gets it: a stored instrument's token in place of its id. One the
   * customer removed, of another app, one given for another payment and not saved (under another
   * key than that payment's), or a bank account whose mandate is not active pays nothing:
   * a refusal no retry cures, which holds the instruction LATE with its code. So does a token this
   * worker's master keys cannot open: retried, it would fail the same way every hour for ever.
   */
  async function withToken(request: PaymentRequest, appId: string, idempotencyKey: string): Promise<PaymentRequest> {
    if (request.instrumentId === undefined) return request;
    const { instrumentId, ...rest } = request;
    const stored = await instruments.read(request.tenantId, instrumentId).catch((err: unknown) => {
      if (!(err instanceof SecretOpenError)) throw err;
      throw new ProviderRejectedError(
        'instrument_unreadable',
        `instrument ${instrumentId} cannot be opened: ${err.message}`,
      );
    });
    if (!stored || stored.status !== 'ACTIVE')
      throw new ProviderRejectedError('instrument_removed', `instrument ${instrumentId} was removed`);
    if (stored.appId !== appId || stored.paymentMethod !== request.paymentMethod)
      throw new ProviderRejectedError('instrument_not_for_app', `instrument ${instrumentId} is not one of ${appId}`);
    if (request.paymentMethod === 'BANK_DEBIT' && mandateEnded(stored.mandateStatus))
      // It never comes back: the instruction waits for another instrument, not for this mandate.
      throw new ProviderRejectedError(
        `mandate_${stored.mandateStatus.toLowerCase()}`,
        `the mandate of instrument ${instrumentId} is ${stored.mandateStatus}`,
      );
    if (request.paymentMethod === 'BANK_DEBIT' && stored.mandateStatus !== 'ACTIVE')
      throw new ProviderRejectedError('mandate_not_active', `the mandate of instrument ${instrumentId} is not active`);
    // Claimed last, once nothing of ours refuses it: a refusal of ours sends nothing, yet moves the
    // instruction to a new key (a pending mandate turning active is then paid under that one).
    if (!stored.saved && !(await instruments.claim(request.tenantId, instrumentId, idempotencyKey))) {
      // Definite whatever an earlier try under this key did: another key holds the instrument, so no
      // try under this one ever sent it (the plan cannot change under a key once used).
      throw refusal(
        PROVIDER_REJECTED,
        'instrument_not_saved',
        `instrument ${instrumentId} was given for one payment and not saved: it pays no other`,
        false,
      );
    }
    // Erased with its status, once another key holds it (refused above either way), or once its
    // instruction is done with it or never named it (orders/one-time-instruments.ts): a refusal, which
    // `call` takes as an unknown outcome on a try after one that may have sent it.
    if (stored.token === undefined)
      throw new ProviderRejectedError('instrument_removed', `instrument ${instrumentId} was removed`);
    return { ...rest, financialInstrumentId: stored.token };
  }

  /**
   * The app and the tenant's installation of it. `keyMayHaveReached`: as for `call`, a refusal here
   * (the app uninstalled, its credentials unreadable on this worker) says nothing of what an earlier
   * try under the key did, so it is an unknown outcome, never a refusal that frees the key.
   * `idempotencyKey`, for a call under one: where it was first sent is kept, and a later call is
   * refused unless the installation still sends it there (`sentWhereFirst`).
   */
  async function connect(
    tenantId: string,
    appId: string,
    keyMayHaveReached: boolean,
    idempotencyKey?: string,
  ): Promise<{ app: AppConnector; installation: InstalledApp }> {
    const app = apps.get(appId);
    let installation: InstalledApp | undefined;
    try {
      // The installation's read waits up to its read limit when the database is slow or away.
      installation = await heartbeating(async () => {
        const read = await installations.get(tenantId, appId);
        if (app && read && idempotencyKey !== undefined)
          await sentWhereFirst({ tenantId, appId, idempotencyKey }, read, keyMayHaveReached);
        return read;
      });
    } catch (err) {
      if (err instanceof SecretOpenError) {
        throw refusal(
          APP_CREDENTIALS_UNREADABLE,
          'app_credentials_unreadable',
          `credentials of ${appId} cannot be opened: ${err.message}`,
          keyMayHaveReached,
        );
      }
      throw err;
    }
    if (!app || !installation)
      throw refusal(APP_NOT_INSTALLED, 'app_not_installed', `${appId} is not installed`, keyMayHaveReached);
    return { app, installation };
  }

  /**
   * Refuses a call under a key when the installation would now send it elsewhere than where it was
   * first sent (a connector's URL or a sandbox merchant's key changed since: the API refuses such a
   * change while a payment through the app may be out, but cannot see a call an event started a
   * moment before, nor a worker's copy of the installation read before the change). That provider
   * never saw the key: asked about it, it would answer "not found", and be paid again. So the outcome
   * is unknown, for a tenant admin to resolve.
   */
  async function sentWhereFirst(key: SentKey, installation: InstalledApp, keyMayHaveReached: boolean): Promise<void> {
    const digest = keyScopeDigest(key.appId, findApp(key.appId)?.keyScope ?? [], installation, key.idempotencyKey);
    let first: string;
    try {
      first = await withinTime(
        keyScopes.firstSentTo(key, digest),
        KEY_SCOPE_LIMIT_MS,
        () => new Error(`where the key was first sent was not read within ${KEY_SCOPE_LIMIT_MS} ms`),
      );
    } catch (err) {
      const error = messageOf(err);
      // The database away: a first send goes on with an installation read within the minute, its
      // destination kept nowhere (as a key's sent before the table was: a later call takes its own).
      if (!keyMayHaveReached && installations.readLately(key.tenantId, key.appId)) {
        if (outageTold.due('sent'))
          log.warn('where a key is first sent could not be kept: sent all the same', { ...key, error });
        return;
      }
      // With an older copy (kept through the outage) it might go where the app no longer sends, and
      // its retry, once the database is back, where it now does; a later call under a key that may
      // have reached a provider cannot be checked. Nothing is sent: put off, the workflow calls again
      // without counting a try, so that a key nothing was sent under is not taken for one that was.
      if (outageTold.due('put off'))
        log.warn('calls put off: where their keys were first sent cannot be read', { ...key, error });
      throw putOff(`where the key was first sent cannot be read (${error}): nothing was sent`, keyMayHaveReached);
    }
    if (first === digest) return;
    log.warn('a call under a key first sent to another provider is not made: its outcome is unknown', key);
    throw refusal(
      OUTCOME_UNKNOWN,
      'provider_moved',
      `${key.appId} now sends to another provider than the one this key was first sent to, which may have paid under it`,
      true,
    );
  }

  /**
   * Makes a call to the provider. `keyMayHaveReached`: an earlier try under the same key may have
   * moved money (it went unanswered), so a refusal now says nothing of what that try did: it is an
   * unknown outcome, which keeps the key, never a refusal that lets a new key pay again.
   */
  async function call<T>(what: () => Promise<T>, keyMayHaveReached: boolean): Promise<T> {
    try {
      return await heartbeating(what);
    } catch (err) {
      if (err instanceof ProviderRejectedError)
        throw refusal(PROVIDER_REJECTED, err.code, err.message, keyMayHaveReached);
      throw err;
    }
  }

  /**
   * The outcome, unless it is a settlement (or a refund) of other money than asked: then what moved is
   * unknown until the provider says it right or a tenant admin resolves it, so the key is kept (a
   * refusal of type OUTCOME_UNKNOWN, never retried: the provider would say the same).
   */
  function believed<T extends PaymentOutcome | RefundOutcome | undefined>(
    outcome: T,
    asked: StatedAmount | undefined,
    context: { tenantId: string; appId: string; orderRef?: string; instructionRef?: string },
  ): T {
    const mismatch = outcome && asked && otherMoneyThanAsked(outcome, asked, context.appId);
    if (!mismatch) return outcome;
    log.warn('a provider answer stating other money than asked is not believed', {
      ...context,
      providerRef: outcome.providerRef,
      error: mismatch,
    });
    throw refusal(OUTCOME_UNKNOWN, 'amount_mismatch', mismatch, true, outcome.providerRef);
  }

  return {
    async executePayment({
      appId,
      request,
      idempotencyKey,
      keyMayHaveReached = false,
    }: ExecutePaymentInput): Promise<PaymentOutcome> {
      // A retry of this activity: the try before it went unanswered (or failed), under the same key.
      const reached = keyMayHaveReached || Context.current().info.attempt > 1;
      const outcome = await inAccountShare(request.tenantId, appId, reached, async () => {
        const { app, installation } = await connect(request.tenantId, appId, reached, idempotencyKey);
        return call(async () => {
          const paying = await withToken(request, appId, idempotencyKey);
          const timer = providerCallSeconds.startTimer({ app: appId });
          try {
            const answer = await app.execute(paying, idempotencyKey, installation);
            timer({ outcome: answer.status.toLowerCase() });
            return answer;
          } catch (err) {
            timer({ outcome: err instanceof ProviderRejectedError ? 'rejected' : 'unanswered' });
            throw err;
          }
        }, reached);
      });
      const { tenantId, orderRef, instructionRef } = request;
      believed(outcome, request, { tenantId, appId, orderRef, instructionRef });
      log.info('payment executed', {
        tenantId,
        orderRef,
        instructionRef,
        appId,
        status: outcome.status,
        providerRef: outcome.providerRef,
      });
      return outcome;
    },

    async getPaymentStatus({ appId, tenantId, providerRef, asked }: PaymentStatusInput): Promise<PaymentOutcome> {
      const status = await inAccountShare(tenantId, appId, false, async () => {
        const { app, installation } = await connect(tenantId, appId, false);
        return call(() => app.getStatus(providerRef, installation), false);
      });
      return believed(status, asked, { tenantId, appId });
    },

    async executeRefund({
      appId,
      request,
      idempotencyKey,
      keyMayHaveReached = false,
    }: ExecuteRefundInput): Promise<RefundOutcome> {
      const reached = keyMayHaveReached || Context.current().info.attempt > 1;
      const outcome = await inAccountShare(request.tenantId, appId, reached, async () => {
        const { app, installation } = await connect(request.tenantId, appId, reached, idempotencyKey);
        // No key reached a provider through an app that cannot refund: a refusal, whatever came before.
        if (!app.refund) throw refundsUnsupported(appId);
        return call(() => app.refund!(request, idempotencyKey, installation), reached);
      });
      const { tenantId, orderRef, instructionRef } = request;
      believed(outcome, request, { tenantId, appId, orderRef, instructionRef });
      log.info('refund executed', {
        tenantId,
        orderRef,
        instructionRef,
        appId,
        status: outcome.status,
        providerRef: outcome.providerRef,
      });
      return outcome;
    },

    async getRefundStatus({ appId, tenantId, providerRef, asked }: RefundStatusInput): Promise<RefundOutcome> {
      const status = await inAccountShare(tenantId, appId, false, async () => {
        const { app, installation } = await connect(tenantId, appId, false);
        if (!app.getRefundStatus) throw refundsUnsupported(appId);
        return call(() => app.getRefundStatus!(providerRef, installation), false);
      });
      return believed(status, asked, { tenantId, appId });
    },

    async lookupPayment({
      appId,
      tenantId,
      idempotencyKey,
      asked,
    }: PaymentLookupInput): Promise<PaymentOutcome | null> {
      // Only a key that may have reached the provider is looked up: a refusal to say is no answer.
      let found: PaymentOutcome | undefined;
      await inAccountShare(tenantId, appId, true, async () => {
        const { app, installation } = await connect(tenantId, appId, true, idempotencyKey);
        await call(async () => {
          found = await app.findByIdempotencyKey(idempotencyKey, installation);
          return found as PaymentOutcome;
        }, true);
      });
      believed(found, asked, { tenantId, appId });
      log.info('asked the provider about an unanswered payment', {
        tenantId,
        appId,
        idempotencyKey,
        found: found?.status ?? 'none',
      });
      return found ?? null;
    },
  };
}

/**
 * `work`, heartbeating at once and every HEARTBEAT_EVERY_MS until it ends: a read of the database, or
 * a provider's answer, may outlast the heartbeat timeout; and if this worker dies, Temporal learns it
 * within that timeout and retries elsewhere (with the same key) instead of waiting out the whole call.
 */
async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  heartbeat();
  const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/** An error's words, for a log line or a put-off's message. */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A call not made, nothing sent: a refusal no retry of the activity takes, so that the workflow calls
 * again without counting a try. `keyMayHaveReached`: whether an earlier try under the key may have
 * reached the provider, for the workflow's next call under it.
 */
function putOff(message: string, keyMayHaveReached: boolean): ApplicationFailure {
  return ApplicationFailure.create({
    type: PROVIDER_CALL_PUT_OFF,
    message,
    details: [keyMayHaveReached],
    nonRetryable: true,
  });
}

function refundsUnsupported(appId: string) {
  return refusal(PROVIDER_REJECTED, 'refunds_not_supported', `${appId} does not refund`, false);
}

/**
 * A refusal no retry cures, with its code. Under a key an earlier try may have moved money with, it
 * is an unknown outcome instead: the workflow keeps the key and asks again later. `providerRef`: the
 * provider's reference for what it says it did, though not believed, for its callback to be known by.
 */
function refusal(
  type: string,
  code: string,
  message: string,
  keyMayHaveReached: boolean,
  providerRef?: string,
): ApplicationFailure {
  return ApplicationFailure.create({
    type: keyMayHaveReached ? OUTCOME_UNKNOWN : type,
    message,
    details: providerRef === undefined ? [code] : [code, providerRef],
    nonRetryable: true,
  });
}
