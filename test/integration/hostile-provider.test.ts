import { randomBytes, randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppRegistry } from '../../apps/app-registry.js';
import { SecretBox } from '../../db/secret-box.js';
import { createOrderActivities } from '../../orders/activities/create-order-activities.js';
import { OUTCOME_UNKNOWN } from '../../orders/contract/activities.js';
import { ProviderCallback } from '../../db/entities/index.js';
import { Migration20261206080000 } from '../../db/migrations/Migration20261206080000.js';
import { passesLuhn } from '../../domain/card-number.js';
import { orderStateQuery } from '../../orders/contract/messages.js';
import { PROVIDER_CALLS_PER_ACCOUNT } from '../../orders/activities/payment-calls.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { stoppedWhileAnswering } from '../support/stopped-while-answering.js';
import { eventually } from '../support/eventually.js';
import { startHostileProvider, type Behaviour, type HostileProvider } from '../support/hostile-provider.js';
import { bankDebitPaidNow } from '../support/bank-debits.js';
import { chooseNewInstrument } from '../support/pay-page-client.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, workerLogLines, type TenantFixture, type TestSystem } from '../support/system.js';

// A tenant's own provider on loopback that misbehaves, one scenario each; what it charged is read
// from its own ledger, so "at most once" is the provider's word, not ours.

let system: TestSystem;
const providers: HostileProvider[] = [];

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await system?.close();
});

const now = () => new Date().toISOString();

/** A tenant paying by card through its own provider, answering within `timeoutMs` or given up. */
async function tenantWithOwnProvider(
  behaviour: Behaviour,
  timeoutMs = 1000,
): Promise<{ tenant: TenantFixture; provider: HostileProvider }> {
  const provider = await startHostileProvider(behaviour);
  providers.push(provider);
  system.issuedSecrets.push(provider.secret);
  const tenant = await system.newTenant({ paymentSetup: false });
  const install = await tenant.client.request('POST', '/v1/marketplace/apps/HTTP_CONNECTOR/install', {
    body: { configuration: { url: provider.url, signingSecret: provider.secret, timeoutMs } },
  });
  expect(install.status, JSON.stringify(install.body)).toBe(201);
  const scheme = await tenant.client.request('POST', '/v1/schemes/collect', {
    body: {
      name: 'own provider',
      isDefault: true,
      rules: [{ options: [{ appId: 'HTTP_CONNECTOR', paymentMethods: ['CARD', 'BANK_DEBIT'], priority: 1 }] }],
    },
  });
  expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
  return { tenant, provider };
}

async function orderDueNow(tenant: TenantFixture, orderRef: string, extra: Record<string, unknown> = {}) {
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      instructions: [
        {
          instructionRef: 'a',
          direction: 'DEBIT',
          amount: '40.00',
          currency: 'EUR',
          country: 'FR',
          openDate: now(),
          dueDate: now(),
          financialInstrumentId: 'card_1',
          ...extra,
        },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

function instructionOf(tenant: TenantFixture, orderRef: string, done: (i: any) => boolean, what: string) {
  return eventually(
    async () => (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body?.instructions?.[0],
    (i) => i !== undefined && done(i),
    { what, timeoutMs: 45_000 },
  );
}

/** The order activities of a worker of its own (an installation it reads afresh), calling on loopback. */
function aWorker() {
  const apps = createAppRegistry(got, {
    sandboxUrl: system.sandbox.url,
    callbackBaseUrl: system.api.url,
    outboundUrls: { allowLoopbackHttp: true },
  });
  return createOrderActivities({ orm: system.orm, apps, box: SecretBox.fromMasterKeys(system.masterKeys) });
}

/** Runs an activity as its `attempt`th try, quietly: the suite's output is for failures. */
const quietActivity = (attempt: number) =>
  new MockActivityEnvironment({ attempt }, { logger: new DefaultLogger('ERROR', () => undefined) });

/** Every other way to pay or stop an instruction: each must be refused while its outcome is unknown. */
const changes = (orderRef: string): [string, string, Record<string, unknown> | undefined][] => [
  ['PATCH', `/v1/order-management/${orderRef}/instructions/a`, { financialInstrumentId: 'card_2' }],
  ['POST', `/v1/order-management/${orderRef}/instructions/a/cancel`, undefined],
  [
    'POST',
    `/v1/order-management/${orderRef}/instructions/a/pay`,
    { appId: 'HTTP_CONNECTOR', paymentMethod: 'CARD', financialInstrumentId: 'card_3' },
  ],
];

/** The worker's one log line saying `words` of the order `orderRef`, once it is written. */
async function warnedOnce(words: string, orderRef: string): Promise<string> {
  const lines = await eventually(
    () => workerLogLines.filter((line) => line.includes(words) && line.includes(`"orderRef":"${orderRef}"`)),
    (found) => found.length === 1,
    { what: `the worker's line "${words}"`, timeoutMs: 30_000 },
  );
  return lines[0];
}

describe('a payment whose outcome is unknown', () => {
  it('keeps its provider: the app’s URL cannot move until the payment is settled or resolved, so its key is never sent where no one saw it', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1, repeatedKey: 409 });
    await orderDueNow(tenant, 'moved-away');
    await instructionOf(tenant, 'moved-away', (i) => i.failureCode === 'outcome_unknown', 'outcome unknown');
    const configure = (configuration: Record<string, unknown>) =>
      tenant.client.request('PUT', '/v1/marketplace/installed/HTTP_CONNECTOR/configuration', {
        body: { configuration },
      });
    // Another endpoint would answer the look-up under the key "not found", and be sent the payment again.
    const elsewhere = await startHostileProvider({});
    providers.push(elsewhere);
    const moved = await configure({ url: elsewhere.url, timeoutMs: 1000 });
    expect(moved).toMatchObject({
      status: 409,
      body: { code: 'app_in_use', errors: [{ path: 'configuration.url', code: 'payments_under_way' }] },
    });
    expect(moved.body.detail).toMatch(/1 instruction\(s\) through HTTP_CONNECTOR are being paid, of unknown outcome/);
    // What does not move the keys may change (a trailing slash is no other URL).
    expect((await configure({ url: `${provider.url}/`, timeoutMs: 2000 })).status).toBe(200);

    const [charge] = provider.charges;
    const resolved = await tenant.client.request('POST', '/v1/order-management/moved-away/instructions/a/resolve', {
      body: { outcome: 'SETTLED', providerRef: charge.providerRef, note: 'found at the provider' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    await instructionOf(tenant, 'moved-away', (i) => i.status === 'SETTLED', 'settled by resolution');
    expect((await configure({ url: elsewhere.url, timeoutMs: 1000 })).status).toBe(200);
    expect(elsewhere.requests, 'the payment was never asked of the other provider').toHaveLength(0);
  });

  it('is never sent to, nor asked of, a provider its app moved to after the first try: the retry is an unknown outcome until the app sends the key where it went', async () => {
    // The API cannot see a call an event started a moment before (nor a worker's copy of the
    // installation read before a change): here no instruction row shows the call, so the move is let.
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1 });
    const elsewhere = await startHostileProvider({});
    providers.push(elsewhere);
    system.issuedSecrets.push(elsewhere.secret);
    const key = `${tenant.tenantId}:moved-between-tries:a:1`;
    const payment = {
      appId: 'HTTP_CONNECTOR',
      idempotencyKey: key,
      request: {
        tenantId: tenant.tenantId,
        orderRef: 'moved-between-tries',
        instructionRef: 'a',
        direction: 'DEBIT' as const,
        paymentMethod: 'CARD' as const,
        amountMinor: '4000',
        currency: 'EUR',
        country: 'FR',
        financialInstrumentId: 'card_1',
      },
    };
    const lookup = { appId: 'HTTP_CONNECTOR', tenantId: tenant.tenantId, idempotencyKey: key };
    const firstTry = await quietActivity(1)
      .run(() => aWorker().executePayment(payment))
      .catch((err: unknown) => err);
    expect(firstTry, 'the first try went unanswered, to be retried').toBeInstanceOf(Error);
    expect(firstTry).not.toMatchObject({ nonRetryable: true });
    expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
    const refund = {
      appId: 'HTTP_CONNECTOR',
      idempotencyKey: `${tenant.tenantId}:moved-between-tries:a:refund:1`,
      request: {
        tenantId: tenant.tenantId,
        orderRef: 'moved-between-tries',
        instructionRef: 'a',
        paymentRef: provider.charges[0].providerRef,
        amountMinor: '1000',
        currency: 'EUR',
      },
    };
    await quietActivity(1).run(() => aWorker().executeRefund(refund));
    expect(provider.refunds.map((r) => r.idempotencyKey)).toEqual([refund.idempotencyKey]);

    const configure = ({ url, secret }: HostileProvider) =>
      tenant.client.request('PUT', '/v1/marketplace/installed/HTTP_CONNECTOR/configuration', {
        body: { configuration: { url, signingSecret: secret, timeoutMs: 1000 } },
      });
    expect((await configure(elsewhere)).status).toBe(200);
    // A retry on a worker that reads the installation as it now stands.
    for (const retry of [
      () => aWorker().executePayment(payment),
      () => aWorker().executePayment({ ...payment, keyMayHaveReached: true }),
      () => aWorker().lookupPayment(lookup),
      () => aWorker().executeRefund({ ...refund, keyMayHaveReached: true }),
    ]) {
      const refused = await quietActivity(2)
        .run(retry)
        .catch((err: unknown) => err);
      expect(refused).toMatchObject({ type: OUTCOME_UNKNOWN, details: ['provider_moved'], nonRetryable: true });
    }
    expect(elsewhere.requests, 'the key never went to the provider that never saw it').toEqual([]);

    // Where it went once more (a trailing slash is the same URL; through the API, only once no payment
    // through the app is of unknown outcome), it is asked about there, and found.
    expect((await configure({ ...provider, url: `${provider.url}/` })).status).toBe(200);
    const found = await quietActivity(1).run(() => aWorker().lookupPayment(lookup));
    expect(found).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
    // A key first sent after a move goes where the app now sends it.
    expect((await configure(elsewhere)).status).toBe(200);
    const other = { ...payment, idempotencyKey: `${key}0`, request: { ...payment.request, instructionRef: 'b' } };
    expect(await quietActivity(1).run(() => aWorker().executePayment(other))).toMatchObject({ status: 'SETTLED' });
    expect(elsewhere.charges.map((c) => c.idempotencyKey)).toEqual([`${key}0`]);
  });

  it('is not resolved as settled under a payment another instruction holds', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1, repeatedKey: 409 });
    await orderDueNow(tenant, 'claims-lost');
    await instructionOf(tenant, 'claims-lost', (i) => i.failureCode === 'outcome_unknown', 'outcome unknown');
    await orderDueNow(tenant, 'claims-paid');
    const paid = await instructionOf(tenant, 'claims-paid', (i) => i.status === 'SETTLED', 'the other paid');
    const resolve = (providerRef: string) =>
      tenant.client.request('POST', '/v1/order-management/claims-lost/instructions/a/resolve', {
        body: { outcome: 'SETTLED', providerRef, note: 'wrong ticket' },
      });
    const taken = await resolve(paid.providerRef);
    expect(taken.status, JSON.stringify(taken.body)).toBe(409);
    expect(taken.body).toMatchObject({
      code: 'provider_ref_in_use',
      errors: [expect.objectContaining({ path: 'providerRef', code: 'in_use' })],
    });
    const [lost] = provider.charges;
    expect((await resolve(lost.providerRef)).status).toBe(200);
  });

  it('leaves a resolution its workflow took and was stopped before answering audited as requested, not refused', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1, repeatedKey: 409 });
    await orderDueNow(tenant, 'resolve-stopped');
    await instructionOf(tenant, 'resolve-stopped', (i) => i.failureCode === 'outcome_unknown', 'outcome unknown');
    const [charge] = provider.charges;
    const resolved = await stoppedWhileAnswering(system.client, tenant.tenantId, 'resolve-stopped', () =>
      tenant.client.request('POST', '/v1/order-management/resolve-stopped/instructions/a/resolve', {
        body: { outcome: 'SETTLED', providerRef: charge.providerRef, note: 'provider support ticket 77' },
      }),
    );
    expect(resolved).toMatchObject({ status: 409, body: { code: 'order_workflow_closed_during_change' } });
    // Sent, and its answer unknown: it may have been applied.
    const audit = await tenant.account.request('GET', '/v1/account/audit');
    const entries = audit.body.items.filter(
      (entry: any) => entry.action === 'instruction.resolve' && entry.details.orderRef === 'resolve-stopped',
    );
    expect(entries.map((entry: any) => [entry.details.note, entry.details.result])).toEqual([
      ['provider support ticket 77', 'requested'],
    ]);
  });

  it('keeps its key when the provider lost its answer and refuses the retry with 409: one charge, however it is changed', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1, repeatedKey: 409 });
    await orderDueNow(tenant, 'lost-answer');
    const unknown = await instructionOf(
      tenant,
      'lost-answer',
      (i) => i.failureCode === 'outcome_unknown',
      'outcome unknown',
    );
    expect(unknown.status).toBe('LATE');
    // The retry under the same key reached the provider and was refused; nothing else was tried.
    const posts = provider.requests.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(posts.map((r) => r.idempotencyKey))).toEqual(new Set([`${tenant.tenantId}:lost-answer:a:1`]));

    for (const [method, path, body] of changes('lost-answer')) {
      const res = await tenant.client.request(method, path, { body });
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(409);
      expect(res.body.detail).toMatch(/may have moved money/);
    }
    expect(provider.charges).toHaveLength(1);
    // The customer's payment page offers no form it would refuse: it says the payment is being confirmed.
    const link = await tenant.client.request('POST', '/v1/order-management/lost-answer/instructions/a/payment-link', {
      body: {},
    });
    const page = await fetch(link.body.url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('still confirming the last payment');
    expect(html).toContain('data-status="PROCESSING"');
    expect(html).not.toContain('<form');

    // The tenant's admin asks the provider, and says what it found; that is audited, and final.
    const [charge] = provider.charges;
    const unnamed = await tenant.client.request('POST', '/v1/order-management/lost-answer/instructions/a/resolve', {
      body: { outcome: 'SETTLED', note: 'it was paid, somewhere' },
    });
    expect(unnamed).toMatchObject({ status: 400, body: { errors: [{ path: 'providerRef', code: 'required' }] } });
    const resolved = await tenant.client.request('POST', '/v1/order-management/lost-answer/instructions/a/resolve', {
      body: { outcome: 'SETTLED', providerRef: charge.providerRef, note: 'provider support ticket 1234' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const settled = await instructionOf(tenant, 'lost-answer', (i) => i.status === 'SETTLED', 'settled by resolution');
    // Collected like any settlement: its amount in the instruction and the order's totals.
    expect(settled).toMatchObject({ providerRef: charge.providerRef, failureCode: null, settledAmount: '40.00' });
    const order = (await tenant.client.request('GET', '/v1/order-management/lost-answer')).body;
    expect(order.totals.EUR).toMatchObject({ collected: '40.00', outstanding: '0.00' });
    const again = await tenant.client.request('POST', '/v1/order-management/lost-answer/instructions/a/resolve', {
      body: { outcome: 'NOT_PAID', note: 'second thoughts' },
    });
    expect(again.status).toBe(409);
    // Both are audited: what was said, and what came of it.
    const audit = await tenant.account.request('GET', '/v1/account/audit');
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({
        action: 'instruction.resolve',
        details: expect.objectContaining({
          orderRef: 'lost-answer',
          outcome: 'SETTLED',
          note: 'provider support ticket 1234',
          result: 'applied',
        }),
      }),
    );
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({
        action: 'instruction.resolve',
        details: expect.objectContaining({ outcome: 'NOT_PAID', result: 'refused', refusal: again.body.code }),
      }),
    );
    expect(provider.charges).toHaveLength(1);
  });

  it('is paid once when the answer was lost and the retry, under the same key, got the recorded payment', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ loseAnswers: 1 });
    await orderDueNow(tenant, 'lost-then-answered');
    const settled = await instructionOf(tenant, 'lost-then-answered', (i) => i.status === 'SETTLED', 'settled');
    const key = `${tenant.tenantId}:lost-then-answered:a:1`;
    // The first call timed out after the money moved; the retry went out under the same key.
    expect(provider.requests.filter((r) => r.method === 'POST').map((r) => r.idempotencyKey)).toEqual([key, key]);
    expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
    expect(settled.providerRef).toBe(provider.charges[0].providerRef);
  });

  it('is paid under a new key only after the tenant resolved that nothing was paid', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ hangWithoutCharging: 1, repeatedKey: 409 });
    await orderDueNow(tenant, 'hung');
    await instructionOf(tenant, 'hung', (i) => i.failureCode === 'outcome_unknown', 'outcome unknown');
    expect(provider.charges).toEqual([]);
    const resolved = await tenant.client.request('POST', '/v1/order-management/hung/instructions/a/resolve', {
      body: { outcome: 'NOT_PAID', note: 'the provider has no payment under the key' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(resolved.body.instructions[0]).toMatchObject({ status: 'LATE', failureCode: 'resolved_not_paid' });
    // Now it may be changed, and paid again: under the next key.
    const amended = await tenant.client.request('PATCH', '/v1/order-management/hung/instructions/a', {
      body: { dueDate: now() },
    });
    expect(amended.status, JSON.stringify(amended.body)).toBe(200);
    await instructionOf(tenant, 'hung', (i) => i.status === 'SETTLED', 'settled under a new key');
    expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([`${tenant.tenantId}:hung:a:2`]);
  });

  /** An order due now whose provider settled 0.01 EUR of the 40.00 EUR asked: its outcome unknown. */
  async function unknownAfterOtherMoney(orderRef: string) {
    const { tenant, provider } = await tenantWithOwnProvider({
      answerOverrides: { amountMinor: '1', currency: 'EUR' },
    });
    await orderDueNow(tenant, orderRef);
    const unknown = await instructionOf(
      tenant,
      orderRef,
      (i) => i.failureCode === 'outcome_unknown',
      'the outcome unknown after a settlement of 0.01 EUR',
    );
    /** The provider's callback saying the payment settled the money asked. */
    const calledBackSettled = async () => {
      const called = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
        providerRef: unknown.providerRef,
        status: 'SETTLED',
        amountMinor: '4000',
        currency: 'EUR',
        reference: { tenantId: tenant.tenantId, orderRef, instructionRef: 'a' },
      });
      expect(called.status).toBe(202);
    };
    return { tenant, provider, unknown, calledBackSettled };
  }

  it('because its provider stated other money is asked about again, under its key, as soon as its callback states the money asked', async () => {
    const { tenant, provider, unknown, calledBackSettled } = await unknownAfterOtherMoney('other-money');
    expect(unknown.status).toBe('LATE');
    // Not believed, but its reference is kept: the provider's callback is known by it.
    expect(unknown.providerRef).toBe(provider.charges[0].providerRef);
    provider.behaviour.answerOverrides = undefined;
    await calledBackSettled();
    // Well before its hourly retry: looked up under its key at once, and settled by what the provider says there.
    const settled = await instructionOf(tenant, 'other-money', (i) => i.status === 'SETTLED', 'settled when asked');
    expect(settled).toMatchObject({
      providerRef: provider.charges[0].providerRef,
      failureCode: null,
      settledAmount: '40.00',
    });
    expect(provider.lookups).toEqual([`${tenant.tenantId}:other-money:a:1`]);
    expect(provider.charges).toHaveLength(1);
  });

  it('resolved as not paid, then said settled by its provider, is not taken, and an operator hears of it', async () => {
    const { tenant, calledBackSettled } = await unknownAfterOtherMoney('said-not-paid');
    const resolved = await tenant.client.request('POST', '/v1/order-management/said-not-paid/instructions/a/resolve', {
      body: { outcome: 'NOT_PAID', note: 'the provider said 0.01 EUR' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    await calledBackSettled();
    expect(await warnedOnce('holds as not settled', 'said-not-paid')).toContain(`"tenantId":"${tenant.tenantId}"`);
    const after = await instructionOf(tenant, 'said-not-paid', () => true, 'the instruction');
    expect(after).toMatchObject({ status: 'LATE', failureCode: 'resolved_not_paid' });
  });

  it('resolved as not paid and paid again, then said settled by its provider while the new payment is under way, is not taken, and an operator hears of it', async () => {
    const orderRef = 'said-not-paid-paying';
    const { tenant, provider, calledBackSettled } = await unknownAfterOtherMoney(orderRef);
    const resolved = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/resolve`, {
      body: { outcome: 'NOT_PAID', note: 'the provider said 0.01 EUR' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    provider.behaviour.answerOverrides = undefined;
    // The new payment is taken, and its answers (its retries' too, under its key) lost until released.
    provider.behaviour.loseAnswers = 1_000;
    const paid = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/pay`, {
      body: { appId: 'HTTP_CONNECTOR', paymentMethod: 'CARD', financialInstrumentId: 'card_3' },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(202);
    await eventually(
      () => provider.charges.length,
      (n) => n === 2,
      { what: 'the new payment under way', timeoutMs: 30_000 },
    );
    await calledBackSettled();
    expect(await warnedOnce('holds as not settled', orderRef)).toContain(`"tenantId":"${tenant.tenantId}"`);
    provider.behaviour.loseAnswers = 0;
    const settled = await instructionOf(tenant, orderRef, (i) => i.status === 'SETTLED', 'settled by the new payment');
    expect(settled.providerRef).toBe(provider.charges[1].providerRef);
    expect(provider.charges).toHaveLength(2);
  });

  it('cannot be resolved when nothing about it is unknown', async () => {
    const { tenant } = await tenantWithOwnProvider({});
    const nextYear = new Date(Date.now() + 365 * 24 * 3600_000).toISOString();
    const res = await tenant.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'plain',
        instructions: ['a', 'b'].map((ref, n) => ({
          instructionRef: ref,
          direction: 'DEBIT',
          amount: '40.00',
          currency: 'EUR',
          country: 'FR',
          openDate: now(),
          dueDate: n === 0 ? now() : nextYear,
          financialInstrumentId: 'card_1',
        })),
      },
    });
    expect(res.status).toBe(202);
    await instructionOf(tenant, 'plain', (i) => i.status === 'SETTLED', 'settled');
    for (const ref of ['a', 'b']) {
      const refused = await tenant.client.request('POST', `/v1/order-management/plain/instructions/${ref}/resolve`, {
        body: { outcome: 'NOT_PAID', note: 'no reason' },
      });
      expect(refused.status, ref).toBe(409);
      expect(refused.body).toMatchObject({
        code: 'instruction_not_changeable',
        detail: expect.stringMatching(/no payment of unknown outcome/),
      });
    }
  });
});

describe('a settlement told again', () => {
  it('of a payment since returned is no news: not taken, and no operator is warned', async () => {
    const orderRef = 'returned-said-settled';
    const { tenant, provider } = await tenantWithOwnProvider({});
    await orderDueNow(tenant, orderRef);
    const settled = await instructionOf(tenant, orderRef, (i) => i.status === 'SETTLED', 'settled');
    const callBack = async (body: Record<string, unknown>) => {
      const called = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
        providerRef: settled.providerRef,
        reference: { tenantId: tenant.tenantId, orderRef, instructionRef: 'a' },
        ...body,
      });
      expect(called.status).toBe(202);
    };
    await callBack({ status: 'RETURNED', returnCode: 'insufficient_funds' });
    await instructionOf(tenant, orderRef, (i) => i.status === 'LATE', 'the payment returned');
    await callBack({ status: 'SETTLED', amountMinor: '4000', currency: 'EUR' });
    // Cancelled after the callback was signalled: once its line is logged, the callback's would be too.
    const cancelled = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/cancel`);
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    await warnedOnce('"status":"CANCELLED","attempts"', orderRef);
    const mine = workerLogLines.filter((line) => line.includes(`"orderRef":"${orderRef}"`));
    expect(mine.filter((line) => line.includes('holds as not settled'))).toEqual([]);
  });
});

describe('a slow provider', () => {
  it('holding every call for its timeout delays no other tenant’s payment', async () => {
    // More held calls than a worker has slots for payments: on one shared queue, B would wait for them.
    // Held for the longest timeout an installation takes, so that B has 30 s to settle in before any is given up.
    const { tenant: a, provider } = await tenantWithOwnProvider({ holdEverything: true }, 30_000);
    const nextYear = new Date(Date.now() + 365 * 24 * 3600_000).toISOString();
    const res = await a.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'held',
        instructions: Array.from({ length: 25 }, (_, n) => ({
          instructionRef: `h${n}`,
          direction: 'DEBIT',
          amount: '1.00',
          currency: 'EUR',
          country: 'FR',
          openDate: now(),
          dueDate: n === 0 ? nextYear : now(),
          financialInstrumentId: 'card_1',
        })),
      },
    });
    expect(res.status).toBe(202);
    await eventually(
      () => Promise.resolve(provider.requests.length),
      (n) => n >= 10,
      { what: "A's calls held", timeoutMs: 20_000 },
    );
    const b = await system.newTenant();
    const order = await b.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'beside',
        instructions: [
          {
            instructionRef: 'a',
            direction: 'DEBIT',
            amount: '5.00',
            currency: 'EUR',
            country: 'FR',
            openDate: now(),
            dueDate: now(),
            financialInstrumentId: 'card_ok',
          },
        ],
      },
    });
    expect(order.status).toBe(202);
    await instructionOf(b, 'beside', (i) => i.status === 'SETTLED', "B's card payment settled");
    // Settled while every one of A's calls was still being held: B waited for none of them.
    expect(provider.released).toEqual([]);
    await provider.close(); // its held calls end, and free their slots for the tests after
  });

  it('has at most half a worker’s calls to tenants’ providers for its account: another account’s own provider is called meanwhile', async () => {
    let answerAll!: () => void;
    const answers = new Promise<void>((resolve) => (answerAll = resolve));
    // Takes each payment at once and answers none until told: its account's calls stay under way.
    const { tenant: a, provider: slow } = await tenantWithOwnProvider({ holdPaymentAnswers: answers }, 30_000);
    const { tenant: b, provider: prompt } = await tenantWithOwnProvider({});
    const res = await a.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'shared-out',
        // More than the worker's 40 slots: without a share, every one held.
        instructions: Array.from({ length: 45 }, (_, n) => ({
          instructionRef: `s${n}`,
          direction: 'DEBIT',
          amount: '1.00',
          currency: 'EUR',
          country: 'FR',
          openDate: now(),
          dueDate: now(),
          financialInstrumentId: 'card_1',
        })),
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await eventually(
      () => Promise.resolve(slow.charges.length),
      (n) => n >= PROVIDER_CALLS_PER_ACCOUNT,
      { what: "A's calls under way", timeoutMs: 20_000 },
    );
    await orderDueNow(b, 'own-beside');
    await instructionOf(b, 'own-beside', (i) => i.status === 'SETTLED', "B's payment settled by B's own provider");
    expect(prompt.charges).toHaveLength(1);
    // While A's provider held every call it had: its share, the rest put off, none sent, none given up.
    expect(slow.charges).toHaveLength(PROVIDER_CALLS_PER_ACCOUNT);
    expect(slow.released).toEqual([]);

    answerAll();
    const order = await eventually(
      async () => (await a.client.request('GET', '/v1/order-management/shared-out')).body,
      (body) => body?.instructions?.every((i: { status: string }) => i.status === 'SETTLED'),
      { what: "all of A's payments settled", timeoutMs: 60_000 },
    );
    expect(order.instructions).toHaveLength(45);
    // Each taken once: a put-off sent nothing, and was sent later under its own key.
    expect(slow.charges).toHaveLength(45);
    expect(new Set(slow.charges.map((c) => c.idempotencyKey)).size).toBe(45);
    expect(slow.requests.filter((r) => r.method === 'POST' && r.path === '/payments')).toHaveLength(45);
  });
});

describe('a provider callback', () => {
  it('speaks only for its own payment: another app’s callback, or one for a payment not in flight, is a 404 and changes nothing', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({});
    const bank = await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_BANK/install', {
      body: { configuration: { apiKey: tenant.sandboxApiKey } },
    });
    expect(bank.status).toBe(201);
    const bankScheme = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'bank',
        rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
      },
    });
    // The bank settles it, but says so only when asked (no callback): it stays in flight meanwhile.
    await bankDebitPaidNow(tenant, 'bank-debit', {
      schemeId: bankScheme.body.schemeId,
      instrument: 'bank_no_callback',
      amount: '40.00',
    });
    const pending = await instructionOf(tenant, 'bank-debit', (i) => i.providerRef !== null, 'bank debit in flight');
    expect(pending).toMatchObject({ status: 'PROCESSING', appId: 'SANDBOX_BANK' });
    const reference = { tenantId: tenant.tenantId, orderRef: 'bank-debit', instructionRef: 'a' };
    const callbackUrl = `${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`;

    // Signed with the tenant's own HTTP_CONNECTOR secret, naming the bank's payment: not its payment.
    const forged = await provider.callBack(callbackUrl, {
      providerRef: pending.providerRef,
      status: 'DECLINED',
      declineCode: 'account_closed',
      reference,
    });
    expect(forged.status).toBe(404);
    expect(((await forged.json()) as { code: string }).code).toBe('payment_not_found');
    // A payment nobody made, and one under a made-up reference, look the same.
    for (const body of [
      { providerRef: 'own_nobody', status: 'SETTLED', reference: { ...reference, orderRef: 'no-such-order' } },
      { providerRef: 'own_other', status: 'SETTLED', reference },
    ]) {
      expect((await provider.callBack(callbackUrl, body)).status).toBe(404);
    }
    expect(await system.orm.em.fork().count(ProviderCallback, { tenantId: tenant.tenantId })).toBe(0);
    const view = await system.client.workflow
      .getHandle(orderWorkflowId(tenant.tenantId, 'bank-debit'))
      .query(orderStateQuery);
    expect(view.instructions[0]).toMatchObject({ status: 'PROCESSING', providerRef: pending.providerRef });
  });

  it('is taken once from its own app, and a replay of it changes nothing; one settling other money is not taken', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ outcome: 'PENDING' });
    await bankDebitPaidNow(tenant, 'own-pending', { appId: 'HTTP_CONNECTOR', instrument: 'iban_1', amount: '40.00' });
    const pending = await instructionOf(tenant, 'own-pending', (i) => i.providerRef !== null, 'own payment in flight');
    const callbackUrl = `${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`;
    const body = {
      providerRef: pending.providerRef,
      status: 'SETTLED',
      reference: { tenantId: tenant.tenantId, orderRef: 'own-pending', instructionRef: 'a' },
    };
    // A settlement stating other money than the 40.00 EUR asked (4.00 EUR, or 40.00 USD) is not taken, nor kept.
    for (const stated of [
      { amountMinor: '400', currency: 'EUR' },
      { amountMinor: '4000', currency: 'USD' },
    ]) {
      const other = await provider.callBack(callbackUrl, { ...body, ...stated });
      expect(other.status).toBe(400);
      expect(((await other.json()) as { code: string }).code).toBe('amount_mismatch');
    }
    expect(await system.orm.em.fork().count(ProviderCallback, { tenantId: tenant.tenantId })).toBe(0);
    expect(
      (await system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'own-pending')).query(orderStateQuery))
        .instructions[0].status,
    ).toBe('PROCESSING');
    // Stating the money asked, it is taken as one stating none is.
    const first = await provider.callBack(callbackUrl, { ...body, amountMinor: '4000', currency: 'EUR' });
    expect(first.status).toBe(202);
    await instructionOf(tenant, 'own-pending', (i) => i.status === 'SETTLED', 'settled by its callback');
    // Replayed at our address as a provider that appends its own query with a second `?` posts to it.
    const replayed = await provider.callBack(`${callbackUrl}?tenantId=${tenant.tenantId}?theirs=1`, body);
    expect(replayed.status).toBe(202);
    expect(await replayed.json()).toEqual({ received: true, duplicate: true });
    // A contrary result for a payment already settled is kept, and changes nothing.
    const declined = await provider.callBack(callbackUrl, { ...body, status: 'DECLINED', declineCode: 'late' });
    expect(declined.status).toBe(202);
    const view = await system.client.workflow
      .getHandle(orderWorkflowId(tenant.tenantId, 'own-pending'))
      .query(orderStateQuery);
    expect(view.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: pending.providerRef });
    expect(view.instructions[0].failureCode).toBeUndefined();
    expect(provider.charges).toHaveLength(1);
  });

  it('is taken when its provider numbers payments with 16 digits passing the Luhn check, as some do', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ outcome: 'PENDING', numericRefs: true });
    await bankDebitPaidNow(tenant, 'own-numeric', { appId: 'HTTP_CONNECTOR', instrument: 'iban_1', amount: '40.00' });
    const pending = await instructionOf(tenant, 'own-numeric', (i) => i.providerRef !== null, 'own payment in flight');
    expect(pending.providerRef).toMatch(/^88\d{14}$/);
    expect(passesLuhn(pending.providerRef)).toBe(true);
    const callback = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
      providerRef: pending.providerRef,
      status: 'SETTLED',
      reference: { tenantId: tenant.tenantId, orderRef: 'own-numeric', instructionRef: 'a' },
    });
    expect(callback.status, await callback.clone().text()).toBe(202);
    await instructionOf(tenant, 'own-numeric', (i) => i.status === 'SETTLED', 'settled by its callback');
    expect(provider.charges).toHaveLength(1);
  });

  it('is refused for now (503), not as forged, by an API that cannot open the tenant’s credentials, and taken when sent again', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ outcome: 'PENDING' });
    await orderDueNow(tenant, 'unverifiable');
    const pending = await instructionOf(tenant, 'unverifiable', (i) => i.providerRef !== null, 'own payment in flight');
    const body = {
      providerRef: pending.providerRef,
      status: 'SETTLED',
      reference: { tenantId: tenant.tenantId, orderRef: 'unverifiable', instructionRef: 'a' },
    };
    // A master key rotated without the previous one kept: the installation's secret cannot be opened.
    const { logger, lines: logged } = capturingLogger('rotated-api', 'info');
    const rotated = await system.startApi({ masterKeys: { current: randomBytes(32).toString('base64') }, logger });
    try {
      const refused = await provider.callBack(`${rotated.url}/v1/providers/HTTP_CONNECTOR/callbacks`, body);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('300');
      expect(((await refused.json()) as { code: string }).code).toBe('callback_unverifiable');
      // Logged once as an error, naming the tenant and app; the request's own line names the answer,
      // at warn, with no stack; no "request failed" besides.
      type Line = { level: number; msg: string; tenantId?: string; failure?: string; err?: unknown };
      const lines = () => logged.map((line) => JSON.parse(line) as Line);
      const [own] = await eventually(
        () => lines().filter((line) => /callbacks → 503$/.test(line.msg)),
        (found) => found.length === 1,
        { what: 'the callback request’s own line' },
      );
      expect(own).toMatchObject({ level: 40, failure: 'answered callback_unverifiable' });
      expect(own.err).toBeUndefined();
      const errors = lines().filter((line) => line.level >= 50);
      expect(errors.map((line) => [line.msg, line.tenantId])).toEqual([
        [expect.stringMatching(/^a provider callback cannot be verified/), tenant.tenantId],
      ]);
    } finally {
      await rotated.close();
    }
    expect(await system.orm.em.fork().count(ProviderCallback, { tenantId: tenant.tenantId })).toBe(0);
    const sentAgain = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, body);
    expect(sentAgain.status, await sentAgain.clone().text()).toBe(202);
    await instructionOf(tenant, 'unverifiable', (i) => i.status === 'SETTLED', 'settled by the callback sent again');
  });
});

describe('a refund through the tenant’s own provider', () => {
  it('is made once when its first answer is lost: the retry goes out under the same key, signed', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({});
    await orderDueNow(tenant, 'own-refund');
    const settled = await instructionOf(tenant, 'own-refund', (i) => i.status === 'SETTLED', 'own payment settled');
    provider.behaviour.loseRefundAnswers = 1;
    const created = await tenant.client.request('POST', '/v1/order-management/own-refund/instructions/a/refunds', {
      body: { amount: '1.50', reason: 'goodwill' },
      headers: { 'idempotency-key': 'own-refund-1' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await eventually(
      async () =>
        (await tenant.client.request('GET', '/v1/order-management/own-refund/instructions/a/refunds')).body.items[0],
      (r: any) => r.status === 'SUCCEEDED',
      { what: 'the refund answered on its retry', timeoutMs: 30_000 },
    );
    expect(provider.refunds).toEqual([
      {
        idempotencyKey: `${tenant.tenantId}:own-refund:a:refund:1`,
        providerRef: done.providerRef,
        paymentRef: settled.providerRef,
        amountMinor: '150',
      },
    ]);
    const calls = provider.requests.filter((r) => r.path === '/refunds');
    expect(calls.length).toBeGreaterThan(1);
    expect(new Set(calls.map((r) => r.idempotencyKey))).toEqual(new Set([`${tenant.tenantId}:own-refund:a:refund:1`]));
    expect(calls.every((r) => r.verified)).toBe(true);
  });

  it('whose outcome is unknown keeps its key until a tenant admin resolves it with what the provider says', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({});
    await orderDueNow(tenant, 'refund-unknown');
    await instructionOf(tenant, 'refund-unknown', (i) => i.status === 'SETTLED', 'own payment settled');
    // The refund is made, its answer lost, and the retry under its key refused: it may have been made.
    Object.assign(provider.behaviour, { loseRefundAnswers: 1, repeatedKey: 409 });
    const refunds = '/v1/order-management/refund-unknown/instructions/a/refunds';
    const created = await tenant.client.request('POST', refunds, {
      body: { amount: '3.00' },
      headers: { 'idempotency-key': 'refund-unknown-1' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const unknown = await eventually(
      async () => (await tenant.client.request('GET', refunds)).body.items[0],
      (r: any) => r.failureCode?.startsWith('outcome_unknown') === true,
      { what: 'the refund’s outcome unknown', timeoutMs: 30_000 },
    );
    expect(unknown.status).toBe('PENDING');
    const resolve = (refundId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      tenant.client.request('POST', `${refunds}/${refundId}/resolve`, { body, headers });
    const unnamed = await resolve(unknown.refundId, { outcome: 'SUCCEEDED', note: 'it went through' });
    expect(unnamed).toMatchObject({ status: 400, body: { errors: [{ path: 'providerRef', code: 'required' }] } });
    const [made] = provider.refunds;
    const resolved = await resolve(
      unknown.refundId,
      { outcome: 'SUCCEEDED', providerRef: made.providerRef, note: 'provider support ticket 77' },
      { 'idempotency-key': 'resolve-ticket-77' },
    );
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(resolved.body).toMatchObject({ status: 'SUCCEEDED', providerRef: made.providerRef });
    const order = (await tenant.client.request('GET', '/v1/order-management/refund-unknown')).body;
    expect(order.totals.EUR).toMatchObject({ collected: '40.00', refunded: '3.00' });
    // Once known it is final; and a refund the instruction does not have is not found.
    const again = await resolve(unknown.refundId, { outcome: 'FAILED', note: 'second thoughts' });
    expect(again).toMatchObject({ status: 409, body: { code: 'refund_not_changeable' } });
    const none = await resolve(randomUUID(), { outcome: 'FAILED', note: 'no such refund' });
    expect(none).toMatchObject({ status: 404, body: { code: 'refund_not_found' } });
    const audit = await tenant.account.request('GET', '/v1/account/audit');
    const audited = audit.body.items.filter((e: any) => e.action === 'refund.resolve');
    const applied = audited.find((e: any) => e.details.outcome === 'SUCCEEDED');
    // Its update's id, from the Idempotency-Key: a retry's entry is tied to the try before.
    expect(applied.details).toMatchObject({
      orderRef: 'refund-unknown',
      result: 'applied',
      updateId: expect.stringMatching(/^api:resolve-ticket-77:/),
    });
    // Written before the resolution was sent, so none goes unaudited whatever fails after it.
    expect(Date.parse(applied.createdAt)).toBeLessThanOrEqual(Date.parse(resolved.body.succeededAt));
    expect(audited.map((e: any) => [e.details.outcome, e.details.result, e.details.refusal]).sort()).toEqual([
      ['FAILED', 'refused', 'refund_not_changeable'],
      ['FAILED', 'refused', 'refund_not_found'],
      ['SUCCEEDED', 'applied', undefined],
    ]);
    // One refund, under one key, all along.
    expect(provider.refunds).toHaveLength(1);
    const keys = provider.requests.filter((r) => r.path === '/refunds').map((r) => r.idempotencyKey);
    expect(new Set(keys)).toEqual(new Set([`${tenant.tenantId}:refund-unknown:a:refund:1`]));
    // A second refund of unknown outcome cannot be said to be the same provider refund: its money would count twice.
    Object.assign(provider.behaviour, { loseRefundAnswers: 1, repeatedKey: 409 });
    const second = await tenant.client.request('POST', refunds, {
      body: { amount: '2.00' },
      headers: { 'idempotency-key': 'refund-unknown-2' },
    });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    await eventually(
      async () =>
        (await tenant.client.request('GET', refunds)).body.items.find((r: any) => r.refundId === second.body.refundId),
      (r: any) => r.failureCode?.startsWith('outcome_unknown') === true,
      { what: 'the second refund’s outcome unknown', timeoutMs: 30_000 },
    );
    const twice = await resolve(second.body.refundId, {
      outcome: 'SUCCEEDED',
      providerRef: made.providerRef,
      note: 'same',
    });
    expect(twice).toMatchObject({ status: 409, body: { code: 'provider_ref_in_use' } });
    expect(twice.body.errors).toEqual([expect.objectContaining({ path: 'providerRef', code: 'in_use' })]);
  });

  /** A settled order whose provider refunded 50.00 EUR of the 5.00 EUR asked: the refund's outcome unknown. */
  async function refundUnknownAfterOtherMoney(orderRef: string) {
    const { tenant, provider } = await tenantWithOwnProvider({});
    await orderDueNow(tenant, orderRef);
    await instructionOf(tenant, orderRef, (i) => i.status === 'SETTLED', 'own payment settled');
    provider.behaviour.answerOverrides = { amountMinor: '5000', currency: 'EUR' };
    const refunds = `/v1/order-management/${orderRef}/instructions/a/refunds`;
    const created = await tenant.client.request('POST', refunds, {
      body: { amount: '5.00' },
      headers: { 'idempotency-key': `${orderRef}-1` },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const unknown = await eventually(
      async () => (await tenant.client.request('GET', refunds)).body.items[0],
      (r: any) => r.failureCode === 'outcome_unknown:amount_mismatch',
      { what: 'the refund’s outcome unknown', timeoutMs: 30_000 },
    );
    /** The provider's callback saying the refund was made, with the money asked. */
    const calledBackSucceeded = async () => {
      const called = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
        object: 'refund',
        providerRef: unknown.providerRef,
        status: 'SUCCEEDED',
        amountMinor: '500',
        currency: 'EUR',
        reference: { tenantId: tenant.tenantId, orderRef, instructionRef: 'a' },
      });
      expect(called.status).toBe(202);
    };
    return { tenant, provider, refunds, unknown, calledBackSucceeded };
  }

  it('whose provider stated other money is called again, under its key, as soon as its callback states the money asked', async () => {
    const { tenant, provider, refunds, unknown, calledBackSucceeded } =
      await refundUnknownAfterOtherMoney('refund-other-money');
    // Not believed, but its reference is kept: the provider's callback is known by it.
    expect(unknown).toMatchObject({ status: 'PENDING', providerRef: provider.refunds[0].providerRef });
    provider.behaviour.answerOverrides = undefined;
    await calledBackSucceeded();
    // Well before its hourly retry: called again under its key at once, and made by the provider's answer.
    const made = await eventually(
      async () => (await tenant.client.request('GET', refunds)).body.items[0],
      (r: any) => r.status === 'SUCCEEDED',
      { what: 'the refund made when called again', timeoutMs: 30_000 },
    );
    expect(made).toMatchObject({ providerRef: provider.refunds[0].providerRef, failureCode: null });
    expect(provider.refunds).toHaveLength(1);
    const keys = provider.requests.filter((r) => r.path === '/refunds').map((r) => r.idempotencyKey);
    expect(keys).toEqual([1, 2].map(() => `${tenant.tenantId}:refund-other-money:a:refund:1`));
  });

  it('resolved as not made, then said made by its provider, is not taken, and an operator hears of it', async () => {
    const { tenant, provider, refunds, unknown, calledBackSucceeded } =
      await refundUnknownAfterOtherMoney('refund-said-not-made');
    const resolved = await tenant.client.request('POST', `${refunds}/${unknown.refundId}/resolve`, {
      body: { outcome: 'FAILED', note: 'the provider said 50.00 EUR' },
      headers: { 'idempotency-key': 'refund-said-not-made-resolved' },
    });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    provider.behaviour.answerOverrides = undefined;
    await calledBackSucceeded();
    expect(await warnedOnce('resolved as not made', 'refund-said-not-made')).toContain(
      `"tenantId":"${tenant.tenantId}"`,
    );
    const after = (await tenant.client.request('GET', refunds)).body.items[0];
    expect(after).toMatchObject({ status: 'FAILED', failureCode: 'resolved_not_refunded' });
  });

  it('said failed by its provider, then said made, is not taken, and an operator hears of it', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ refundOutcome: 'FAILED' });
    await orderDueNow(tenant, 'refund-said-failed');
    await instructionOf(tenant, 'refund-said-failed', (i) => i.status === 'SETTLED', 'own payment settled');
    const refunds = '/v1/order-management/refund-said-failed/instructions/a/refunds';
    const created = await tenant.client.request('POST', refunds, {
      body: { amount: '5.00' },
      headers: { 'idempotency-key': 'refund-said-failed-1' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const failed = await eventually(
      async () => (await tenant.client.request('GET', refunds)).body.items[0],
      (r: any) => r.status === 'FAILED',
      { what: 'the refund failed at its provider', timeoutMs: 30_000 },
    );
    const called = await provider.callBack(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
      object: 'refund',
      providerRef: failed.providerRef,
      status: 'SUCCEEDED',
      amountMinor: '500',
      currency: 'EUR',
      reference: { tenantId: tenant.tenantId, orderRef: 'refund-said-failed', instructionRef: 'a' },
    });
    expect(called.status).toBe(202);
    expect(await warnedOnce('that it said had failed', 'refund-said-failed')).toContain(
      `"tenantId":"${tenant.tenantId}"`,
    );
    expect((await tenant.client.request('GET', refunds)).body.items[0]).toMatchObject({ status: 'FAILED' });
  });

  it('keeps its app installed while it is under way: uninstalling is refused, naming it', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({});
    await orderDueNow(tenant, 'own-refund-held');
    await instructionOf(tenant, 'own-refund-held', (i) => i.status === 'SETTLED', 'own payment settled');
    provider.behaviour.loseRefundAnswers = 1_000;
    const created = await tenant.client.request('POST', '/v1/order-management/own-refund-held/instructions/a/refunds', {
      body: { amount: '2.00' },
      headers: { 'idempotency-key': 'own-refund-held-1' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const uninstall = await tenant.client.request('POST', '/v1/marketplace/installed/HTTP_CONNECTOR/uninstall');
    expect(uninstall).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
    expect(uninstall.body.detail).toMatch(/1 refund\(s\) under way/);
    provider.behaviour.loseRefundAnswers = 0;
    await eventually(
      async () =>
        (await tenant.client.request('GET', '/v1/order-management/own-refund-held/instructions/a/refunds')).body
          .items[0],
      (r: any) => r.status === 'SUCCEEDED',
      { what: 'the refund answered once the provider does', timeoutMs: 30_000 },
    );
    expect(provider.refunds).toHaveLength(1);
  });
  it('is called back, and keeps its app installed, through the app that took its payment after the customer paid through another', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({ refundOutcome: 'PENDING' });
    const card = await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
      body: { configuration: { apiKey: tenant.sandboxApiKey } },
    });
    expect(card.status).toBe(201);
    const scheme = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'debits by the own provider, or the sandbox’s cards',
        rules: [
          {
            options: [
              { appId: 'HTTP_CONNECTOR', paymentMethods: ['BANK_DEBIT'], priority: 1 },
              { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 2 },
            ],
          },
        ],
      },
    });
    expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
    await bankDebitPaidNow(tenant, 'refund-moved', {
      appId: 'HTTP_CONNECTOR',
      instrument: 'iban_1',
      schemeId: scheme.body.schemeId,
      amount: '40.00',
    });
    const settled = await instructionOf(tenant, 'refund-moved', (i) => i.status === 'SETTLED', 'own payment settled');
    expect(settled.appId).toBe('HTTP_CONNECTOR');
    const created = await tenant.client.request('POST', '/v1/order-management/refund-moved/instructions/a/refunds', {
      body: { amount: '5.00' },
      headers: { 'idempotency-key': 'refund-moved-1' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const refunds = () => tenant.client.request('GET', '/v1/order-management/refund-moved/instructions/a/refunds');
    const pending = await eventually(
      async () => (await refunds()).body.items[0],
      (r: any) => r.providerRef !== null,
      {
        what: 'the refund PENDING at its provider',
        timeoutMs: 30_000,
      },
    );
    const callbackUrl = `${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`;
    const reference = { tenantId: tenant.tenantId, orderRef: 'refund-moved', instructionRef: 'a' };
    // While the refund is under way the payment is taken back, and the customer pays by the sandbox's card.
    const returned = await provider.callBack(callbackUrl, {
      providerRef: settled.providerRef,
      status: 'RETURNED',
      returnCode: 'insufficient_funds',
      reference,
    });
    expect(returned.status).toBe(202);
    await instructionOf(tenant, 'refund-moved', (i) => i.status === 'LATE', 'the payment returned');
    const paid = await tenant.client.request('POST', '/v1/order-management/refund-moved/instructions/a/pay', {
      body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(202);
    await instructionOf(
      tenant,
      'refund-moved',
      (i) => i.status === 'SETTLED' && i.appId === 'SANDBOX_CARD',
      'paid again by card',
    );
    // The refund still goes through the tenant's own provider: its app stays installed until it ends.
    const uninstall = await tenant.client.request('POST', '/v1/marketplace/installed/HTTP_CONNECTOR/uninstall');
    expect(uninstall).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
    expect(uninstall.body.detail).toMatch(/1 refund\(s\) under way/);
    // Its provider's word on it is not taken when it states other money than the 5.00 EUR asked.
    const refundBody = { object: 'refund', providerRef: pending.providerRef, status: 'SUCCEEDED', reference };
    for (const stated of [
      { amountMinor: '5000', currency: 'EUR' },
      { amountMinor: '500', currency: 'USD' },
    ]) {
      const other = await provider.callBack(callbackUrl, { ...refundBody, ...stated });
      expect(other.status).toBe(400);
      expect(((await other.json()) as { code: string }).code).toBe('amount_mismatch');
    }
    expect(
      await system.orm.em
        .fork()
        .count(ProviderCallback, { tenantId: tenant.tenantId, providerRef: pending.providerRef }),
    ).toBe(0);
    expect((await refunds()).body.items[0].status).toBe('PENDING');
    // And it is taken when it states the money asked; what else it sent (the token it paid back to) is not kept.
    const refunded = await provider.callBack(callbackUrl, {
      ...refundBody,
      amountMinor: '500',
      currency: 'EUR',
      instrument: 'tok_sent_back_4242',
    });
    expect(refunded.status).toBe(202);
    const [kept] = await system.orm.em
      .fork()
      .find(ProviderCallback, { tenantId: tenant.tenantId, providerRef: pending.providerRef });
    expect(kept.payload).toMatchObject({
      kind: 'refund',
      result: { providerRef: pending.providerRef, status: 'SUCCEEDED' },
    });
    expect(JSON.stringify(kept.payload)).not.toContain('tok_sent_back');
    // A callback stored before, as it was sent, keeps only what its columns say of it.
    const checked = kept.payload;
    const em = system.orm.em.fork();
    await em.nativeUpdate(
      ProviderCallback,
      { id: kept.id },
      { payload: { ...refundBody, instrument: 'tok_old_4242' } },
    );
    await new Migration20261206080000(em.getDriver(), system.orm.config).up();
    const migrated = await system.orm.em.fork().findOneOrFail(ProviderCallback, { id: kept.id });
    expect(migrated.payload).toEqual({ providerRef: pending.providerRef, status: 'SUCCEEDED' });
    await em.nativeUpdate(ProviderCallback, { id: kept.id }, { payload: checked });
    await new Migration20261206080000(em.getDriver(), system.orm.config).up();
    expect((await system.orm.em.fork().findOneOrFail(ProviderCallback, { id: kept.id })).payload).toEqual(checked);
    await eventually(
      async () => (await refunds()).body.items[0],
      (r: any) => r.status === 'SUCCEEDED',
      {
        what: 'the refund’s callback taken',
        timeoutMs: 30_000,
      },
    );
    expect(provider.refunds).toHaveLength(1);
  });
});

describe('cards on the tenant’s own provider’s page', () => {
  async function openLink(tenant: TenantFixture, orderRef: string): Promise<string> {
    const future = new Date(Date.now() + 7 * 86_400_000).toISOString();
    await orderDueNow(tenant, orderRef, { dueDate: future, financialInstrumentId: undefined });
    await instructionOf(tenant, orderRef, (i) => i.status === 'OPEN', 'open');
    const link = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/payment-link`, {
      body: {},
    });
    expect(link.status).toBe(201);
    return link.body.url;
  }

  it('are entered on its hosted form, exchanged for its token, and paid with: the contract in the README', async () => {
    const { tenant, provider } = await tenantWithOwnProvider({});
    const linkUrl = await openLink(tenant, 'own-form');
    const toProvider = await chooseNewInstrument(linkUrl, 'HTTP_CONNECTOR:CARD');
    expect(toProvider.status).toBe(303);
    const form = toProvider.headers.get('location')!;
    expect(form.startsWith(`${new URL(provider.url).origin}/own/hosted/hs_`)).toBe(true);
    const back = await fetch(form, { redirect: 'manual' });
    const returned = await fetch(back.headers.get('location')!, { redirect: 'manual' });
    expect(returned.status).toBe(303);
    await instructionOf(tenant, 'own-form', (i) => i.status === 'SETTLED', 'paid with the token');
    // The address back reloaded: the provider answers the exchange 409, and the page shows where the
    // payment stands, as for the sandbox's `already_exchanged`; nothing is paid again.
    const reloaded = await fetch(back.headers.get('location')!, { redirect: 'manual' });
    expect([reloaded.status, reloaded.headers.get('location')]).toEqual([303, new URL(linkUrl).pathname]);
    expect(provider.charges.map((c) => c.instrument)).toEqual(provider.tokens);
    // Opening and exchanging were signed with the installation's secret.
    const signed = provider.requests.filter((r) => r.path.startsWith('/hosted-sessions'));
    expect(signed.map((r) => [r.method, r.verified])).toEqual([
      ['POST', true],
      ['POST', true],
      ['POST', true],
    ]);
  });

  it('are refused when the provider answers a card number, an IBAN, an unmasked account or a form on another origin: nothing paid', async () => {
    for (const hostedForm of [
      'card-number-in-answer',
      'iban-in-answer',
      'account-number-in-answer',
      'other-origin',
    ] as const) {
      const { tenant, provider } = await tenantWithOwnProvider({ hostedForm });
      const linkUrl = await openLink(tenant, `own-${hostedForm}`);
      const toProvider = await chooseNewInstrument(linkUrl, 'HTTP_CONNECTOR:CARD');
      if (hostedForm === 'other-origin') {
        expect(toProvider.status).toBe(502);
        expect(await toProvider.text()).toContain('Nothing was charged');
      } else {
        const back = await fetch(toProvider.headers.get('location')!, { redirect: 'manual' });
        const returned = await fetch(back.headers.get('location')!, { redirect: 'manual' });
        expect(returned.status).toBe(502);
        expect(await returned.text()).toContain('Nothing was charged');
      }
      expect(provider.charges).toEqual([]);
      expect(
        (await tenant.client.request('GET', `/v1/order-management/own-${hostedForm}`)).body.instructions[0].status,
      ).toBe('OPEN');
    }
    expect(system.logLines.join('\n')).not.toContain('4111 1111 1111 1111');
    expect(system.logLines.join('\n')).not.toContain('DE89 3704');
    expect(system.logLines.join('\n')).not.toContain('370400440532013000');
  });
});

describe('logs', () => {
  it('hold no provider signing secret, app key or private key of any test here, in any process', () => {
    expectNoSecretsInLogs(system);
  });
});
