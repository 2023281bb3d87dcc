import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { describe, expect, it, vi } from 'vitest';
import type { AppConnector } from '../../apps/app-connector.js';
import { SecretOpenError } from '../../db/secret-box.js';
import { providerCallsPutOff } from '../../observability/metrics.js';
import type { InstallationCache } from '../../orders/activities/installation-cache.js';
import type { KeyScopes } from '../../orders/activities/key-scopes.js';
import {
  createPaymentActivities,
  type InstrumentTokens,
  PROVIDER_CALLS_PER_ACCOUNT,
} from '../../orders/activities/payment-calls.js';
import {
  APP_CREDENTIALS_UNREADABLE,
  APP_NOT_INSTALLED,
  OUTCOME_UNKNOWN,
  PROVIDER_CALL_PUT_OFF,
  PROVIDER_REJECTED,
} from '../../orders/contract/activities.js';

// A refusal before the provider is reached (the app uninstalled, its credentials unreadable on this
// worker) says nothing of what an earlier try under the same key did: under such a key it must be
// an unknown outcome, which keeps the key, never a refusal, which lets a new key pay again.

const tenantId = 't1';
const request = {
  tenantId,
  orderRef: 'o1',
  instructionRef: 'a',
  direction: 'DEBIT' as const,
  paymentMethod: 'CARD' as const,
  amountMinor: '4000',
  currency: 'EUR',
  country: 'FR',
  financialInstrumentId: 'card_1',
};
const refund = {
  tenantId,
  orderRef: 'o1',
  instructionRef: 'a',
  paymentRef: 'pay_1',
  amountMinor: '1000',
  currency: 'EUR',
};

/** An app whose provider settles every payment at once, each key it is sent put in `sent`. */
function settlingApp(sent: string[]): AppConnector {
  return {
    execute: (_payment: unknown, idempotencyKey: string) => {
      sent.push(idempotencyKey);
      return Promise.resolve({ status: 'SETTLED', providerRef: `ref_${idempotencyKey}` });
    },
  } as unknown as AppConnector;
}

/** Every key sent where it was first (what test/integration/hostile-provider.test.ts holds otherwise). */
const everyKeyWhereFirst: KeyScopes = { firstSentTo: (_key, digest) => Promise.resolve(digest) };

/** The activities of a worker on which the app's installation reads as `installed` does. */
function activitiesWhere(
  installed: () => Promise<undefined>,
  read: InstrumentTokens['read'] = () => Promise.resolve(undefined),
  claim: InstrumentTokens['claim'] = () => Promise.resolve(true),
) {
  const app = {} as AppConnector; // never called: each refusal comes before the provider
  return createPaymentActivities({
    apps: new Map([['SANDBOX_CARD', app]]),
    installations: { get: installed } as unknown as InstallationCache,
    keyScopes: everyKeyWhereFirst,
    instruments: { read, claim },
  });
}
const uninstalled = activitiesWhere(() => Promise.resolve(undefined));
const unreadable = activitiesWhere(() => Promise.reject(new SecretOpenError('the master key does not open it')));

/** Runs an activity quietly: the suite's output is for failures (each run here fails or pays, as meant). */
const quietly = (info: { attempt?: number } = {}) =>
  new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR', () => undefined) });

async function refusalOf(attempt: number, run: () => Promise<unknown>): Promise<[string | undefined, unknown]> {
  const err = await quietly({ attempt })
    .run(run)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.nonRetryable).toBe(true);
  return [failure.type ?? undefined, failure.details?.[0]];
}

describe('a refusal before the provider is reached', () => {
  const pay = (activities: typeof uninstalled, keyMayHaveReached?: boolean) => () =>
    activities.executePayment({ appId: 'SANDBOX_CARD', request, idempotencyKey: 't1:o1:a:1', keyMayHaveReached });
  const refundWith = (activities: typeof uninstalled, keyMayHaveReached?: boolean) => () =>
    activities.executeRefund({
      appId: 'SANDBOX_CARD',
      request: refund,
      idempotencyKey: 't1:o1:a:refund:1',
      keyMayHaveReached,
    });

  it('is a refusal on a key that cannot have reached the provider: nothing moved', async () => {
    expect(await refusalOf(1, pay(uninstalled))).toEqual([APP_NOT_INSTALLED, 'app_not_installed']);
    expect(await refusalOf(1, pay(unreadable))).toEqual([APP_CREDENTIALS_UNREADABLE, 'app_credentials_unreadable']);
    expect(await refusalOf(1, refundWith(uninstalled))).toEqual([APP_NOT_INSTALLED, 'app_not_installed']);
    // No key can have reached a provider through an app that does not refund: a refusal on any try,
    // never an unknown outcome asked about for ever.
    const refundless = activitiesWhere(() => Promise.resolve({} as never));
    expect(await refusalOf(2, refundWith(refundless, true))).toEqual([PROVIDER_REJECTED, 'refunds_not_supported']);
  });

  it("is a refusal, never a retry, when a stored instrument's token cannot be opened on this worker", async () => {
    const sealedElsewhere = activitiesWhere(
      () => Promise.resolve({} as never),
      () => Promise.reject(new SecretOpenError('sealed under another master key')),
    );
    const { financialInstrumentId: _, ...byInstrument } = request;
    const payWithStored = (keyMayHaveReached?: boolean) => () =>
      sealedElsewhere.executePayment({
        appId: 'SANDBOX_CARD',
        request: { ...byInstrument, instrumentId: 'ins_1' },
        idempotencyKey: 't1:o1:a:1',
        keyMayHaveReached,
      });
    expect(await refusalOf(1, payWithStored())).toEqual([PROVIDER_REJECTED, 'instrument_unreadable']);
    // Under a key an earlier try may have paid with, what that try did stays unknown.
    expect(await refusalOf(1, payWithStored(true))).toEqual([OUTCOME_UNKNOWN, 'instrument_unreadable']);
  });

  it('is a refusal, on any try, for an instrument not saved that another payment’s key holds; claimed only once ours pass', async () => {
    const { financialInstrumentId: _, ...byInstrument } = request;
    const claims: string[] = [];
    const oneTime = (
      paymentMethod: string,
      mandateStatus: 'PENDING' | 'ACTIVE' | null,
      heldByAnother: boolean,
      erased = false,
    ) =>
      activitiesWhere(
        () => Promise.resolve({} as never),
        () =>
          Promise.resolve({
            ...(erased ? {} : { token: 'tok_1' }),
            saved: false,
            appId: 'SANDBOX_CARD',
            paymentMethod,
            status: 'ACTIVE',
            mandateStatus,
          }),
        (_tenant, _instrument, key) => {
          claims.push(key);
          return Promise.resolve(!heldByAnother);
        },
      );
    const payWith = (activities: typeof uninstalled, paymentMethod: string, keyMayHaveReached?: boolean) => () =>
      activities.executePayment({
        appId: 'SANDBOX_CARD',
        request: { ...byInstrument, paymentMethod, instrumentId: 'ins_1' } as never,
        idempotencyKey: 't1:o1:a:2',
        keyMayHaveReached,
      });
    // Its one payment was another key's: refused for good, even on a retry (no try under this key sent it).
    const spent = oneTime('CARD', null, true);
    expect(await refusalOf(1, payWith(spent, 'CARD'))).toEqual([PROVIDER_REJECTED, 'instrument_not_saved']);
    expect(await refusalOf(2, payWith(spent, 'CARD', true))).toEqual([PROVIDER_REJECTED, 'instrument_not_saved']);
    // Asked for by a third payment, its token already erased: still not saved, not removed.
    const erased = oneTime('CARD', null, true, true);
    expect(await refusalOf(1, payWith(erased, 'CARD'))).toEqual([PROVIDER_REJECTED, 'instrument_not_saved']);
    // Erased once its instruction came to rest (orders/one-time-instruments.ts), then asked for again
    // under its own key: a first try sent nothing, but a retry's earlier try may have paid with it, so
    // what moved is unknown and the key is kept, never freed for a new one.
    const restedHere = oneTime('CARD', null, false, true);
    expect(await refusalOf(1, payWith(restedHere, 'CARD'))).toEqual([PROVIDER_REJECTED, 'instrument_removed']);
    expect(await refusalOf(2, payWith(restedHere, 'CARD'))).toEqual([OUTCOME_UNKNOWN, 'instrument_removed']);
    expect(await refusalOf(1, payWith(restedHere, 'CARD', true))).toEqual([OUTCOME_UNKNOWN, 'instrument_removed']);
    // A bank account whose mandate is not yet active is refused by us before it is claimed: the key the
    // instruction moves to once the mandate is active may still claim it.
    claims.length = 0;
    const pendingMandate = oneTime('BANK_DEBIT', 'PENDING', false);
    expect(await refusalOf(1, payWith(pendingMandate, 'BANK_DEBIT'))).toEqual([
      PROVIDER_REJECTED,
      'mandate_not_active',
    ]);
    expect(claims).toEqual([]);
  });

  it('names a mandate that ended, for good, not as one not active yet (rechecked for nothing)', async () => {
    const { financialInstrumentId: _, ...byInstrument } = request;
    const debitUnder = (mandateStatus: string) =>
      activitiesWhere(
        () => Promise.resolve({} as never),
        () =>
          Promise.resolve({
            token: 'tok_1',
            saved: true,
            appId: 'SANDBOX_CARD',
            paymentMethod: 'BANK_DEBIT',
            status: 'ACTIVE',
            mandateStatus: mandateStatus as never,
          }),
      ).executePayment({
        appId: 'SANDBOX_CARD',
        request: { ...byInstrument, paymentMethod: 'BANK_DEBIT', instrumentId: 'ins_1' },
        idempotencyKey: 't1:o1:a:1',
      });
    const codes = [];
    for (const status of ['PENDING', 'CANCELLED', 'EXPIRED'])
      codes.push((await refusalOf(1, () => debitUnder(status)))[1]);
    expect(codes).toEqual(['mandate_not_active', 'mandate_cancelled', 'mandate_expired']);
  });

  it('is an unknown outcome on a key an earlier try may have paid or refunded with', async () => {
    // The workflow says so (an unanswered call before), or the activity is itself a retry.
    expect(await refusalOf(1, pay(uninstalled, true))).toEqual([OUTCOME_UNKNOWN, 'app_not_installed']);
    expect(await refusalOf(2, pay(unreadable))).toEqual([OUTCOME_UNKNOWN, 'app_credentials_unreadable']);
    expect(await refusalOf(1, refundWith(uninstalled, true))).toEqual([OUTCOME_UNKNOWN, 'app_not_installed']);
    expect(await refusalOf(2, refundWith(unreadable))).toEqual([OUTCOME_UNKNOWN, 'app_credentials_unreadable']);
    // A look-up is only of such a key.
    const lookup = () => uninstalled.lookupPayment({ appId: 'SANDBOX_CARD', tenantId, idempotencyKey: 't1:o1:a:1' });
    expect(await refusalOf(1, lookup)).toEqual([OUTCOME_UNKNOWN, 'app_not_installed']);
  });
});

describe('a call put off while its account has its share of calls to tenant-hosted providers under way', () => {
  it('sends nothing, and tells whether an earlier attempt of it may have reached the provider under its key', async () => {
    let answerAll!: () => void;
    const answered = new Promise<void>((resolve) => (answerAll = resolve));
    const sent: string[] = [];
    const app = {
      async execute(_payment: unknown, idempotencyKey: string) {
        sent.push(idempotencyKey);
        await answered;
        return { status: 'SETTLED', providerRef: `ref_${idempotencyKey}` };
      },
    } as unknown as AppConnector;
    const activities = createPaymentActivities({
      apps: new Map([
        ['HTTP_CONNECTOR', app],
        ['SANDBOX_CARD', app],
      ]),
      installations: { get: () => Promise.resolve({ configuration: {}, secrets: {} }) } as unknown as InstallationCache,
      keyScopes: everyKeyWhereFirst,
      instruments: { read: () => Promise.resolve(undefined), claim: () => Promise.resolve(true) },
      accountOf: (of) => Promise.resolve(of === 'other' ? 'account-2' : 'account-1'),
    });
    const pay =
      (appId: string, key: string, of = tenantId) =>
      () =>
        activities.executePayment({ appId, request: { ...request, tenantId: of }, idempotencyKey: key });
    const underWay = Array.from({ length: PROVIDER_CALLS_PER_ACCOUNT }, (_, n) =>
      quietly().run(pay('HTTP_CONNECTOR', `k${n}`)),
    );
    await vi.waitFor(() => expect(sent).toHaveLength(PROVIDER_CALLS_PER_ACCOUNT));

    const putOffs = async () => (await providerCallsPutOff.get()).values.find((v) => v.labels.app === 'HTTP_CONNECTOR');
    const before = (await putOffs())?.value ?? 0;
    expect(await refusalOf(1, pay('HTTP_CONNECTOR', 'first-try'))).toEqual([PROVIDER_CALL_PUT_OFF, false]);
    // A retry of the activity: its first attempt may have reached the provider.
    expect(await refusalOf(2, pay('HTTP_CONNECTOR', 'retried'))).toEqual([PROVIDER_CALL_PUT_OFF, true]);
    expect(sent).toHaveLength(PROVIDER_CALLS_PER_ACCOUNT);
    expect((await putOffs())!.value - before).toBe(2);
    // Another account's tenant has its own share; the platform's own providers have none.
    const beside = [
      quietly().run(pay('HTTP_CONNECTOR', 'other-account', 'other')),
      quietly().run(pay('SANDBOX_CARD', 'platform-provider')),
    ];
    await vi.waitFor(() => expect(sent).toEqual(expect.arrayContaining(['other-account', 'platform-provider'])));

    answerAll();
    await Promise.all([...underWay, ...beside]);
    // Their share back: the account's next call is sent.
    await quietly().run(pay('HTTP_CONNECTOR', 'after'));
    expect(sent).toContain('after');
  });
});

describe('a call whose key’s first destination cannot be read (the database away)', () => {
  it('is made when it is the key’s first with an installation read lately, and else put off, sending nothing', async () => {
    const sent: string[] = [];
    let lately = true;
    const app = settlingApp(sent);
    const activities = createPaymentActivities({
      apps: new Map([['SANDBOX_CARD', app]]),
      installations: {
        get: () => Promise.resolve({ configuration: {}, secrets: {} }),
        // A copy read lately, until one kept through the outage.
        readLately: () => lately,
      } as unknown as InstallationCache,
      keyScopes: { firstSentTo: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')) },
      instruments: { read: () => Promise.resolve(undefined), claim: () => Promise.resolve(true) },
    });
    const pay = (key: string) => () =>
      activities.executePayment({ appId: 'SANDBOX_CARD', request, idempotencyKey: key });
    expect(await quietly({ attempt: 1 }).run(pay('t1:o1:a:1'))).toMatchObject({ status: 'SETTLED' });
    // Put off, not retried by the activity: a try that sent nothing is not counted as one that may have.
    expect(await refusalOf(2, pay('t1:o1:b:1'))).toEqual([PROVIDER_CALL_PUT_OFF, true]);
    lately = false;
    expect(await refusalOf(1, pay('t1:o1:c:1'))).toEqual([PROVIDER_CALL_PUT_OFF, false]);
    expect(sent).toEqual(['t1:o1:a:1']);
  });
});

describe('a call to a tenant-hosted provider whose tenant’s account cannot be read (the database away)', () => {
  it('is put off, sending nothing, and tells whether an earlier try may have reached the provider', async () => {
    const sent: string[] = [];
    const app = settlingApp(sent);
    const activities = createPaymentActivities({
      apps: new Map([['HTTP_CONNECTOR', app]]),
      installations: { get: () => Promise.resolve({ configuration: {}, secrets: {} }) } as unknown as InstallationCache,
      keyScopes: everyKeyWhereFirst,
      instruments: { read: () => Promise.resolve(undefined), claim: () => Promise.resolve(true) },
      accountOf: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')),
    });
    const pay = (key: string) => () =>
      activities.executePayment({ appId: 'HTTP_CONNECTOR', request, idempotencyKey: key });
    expect(await refusalOf(1, pay('t1:o1:a:1'))).toEqual([PROVIDER_CALL_PUT_OFF, false]);
    expect(await refusalOf(2, pay('t1:o1:a:1'))).toEqual([PROVIDER_CALL_PUT_OFF, true]);
    expect(sent).toEqual([]);
  });
});
