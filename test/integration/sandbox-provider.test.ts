import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_SIGNATURE_HEADER, verifySandboxCallback } from '../../apps/sandbox/callback-signature.js';
import { Ledger, type PaymentRecord } from '../../apps/sandbox/ledger.js';
import { VOUCHER_CATALOG } from '../../domain/voucher-catalog.js';
import { eventually } from '../support/eventually.js';
import { startSandbox, type RunningSandbox } from '../support/sandbox.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';

const merchantKey = newApiKey();
const otherMerchantKey = newApiKey();
const tenantId = `tenant-${randomUUID()}`;
const VOUCHER_CODE = /^VCH-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/;
const poll = { timeoutMs: 15_000, intervalMs: 50 };

let sandbox: RunningSandbox;
let receiver: CallbackReceiver;

beforeAll(async () => {
  [sandbox, receiver] = await Promise.all([startSandbox({ settleMs: 200, returnMs: 600 }), startCallbackReceiver()]);
});

afterAll(async () => {
  await Promise.all([sandbox?.close(), receiver?.close()]);
});

describe('the sandbox provider', () => {
  it('lets in only merchants with a test API key', async () => {
    const body = cardPayment('card_ok');
    for (const authorization of [
      undefined,
      'Bearer sk_live_abcdefgh12',
      'Bearer sk_test_short',
      `Basic ${merchantKey}`,
      `Bearer ${merchantKey}-x`,
    ]) {
      const res = await call('POST', '/v1/payments', { authorization, idempotencyKey: randomUUID(), body });
      expect(res).toEqual({ status: 401, body: { error: 'invalid_api_key' } });
    }
    expect(await call('GET', '/v1/vouchers', { authorization: undefined })).toEqual({
      status: 401,
      body: { error: 'invalid_api_key' },
    });
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toEqual([]);
  });

  it('shows a payment only to the merchant that made it', async () => {
    const created = await pay(cardPayment('card_ok'));
    expect(created.status).toBe(201);
    expect(await call('GET', `/v1/payments/${created.body.id}`)).toEqual({ status: 200, body: created.body });
    expect(await call('GET', `/v1/payments/${created.body.id}`, { apiKey: otherMerchantKey })).toEqual({
      status: 404,
      body: { error: 'not_found' },
    });
    expect((await call('GET', `/v1/payments/sbx_${randomUUID()}`)).status).toBe(404);
  });

  it('refuses malformed and unsupported payments, recording nothing', async () => {
    const body = cardPayment('card_ok');
    expect(await call('POST', '/v1/payments', { body })).toEqual({
      status: 400,
      body: { error: 'idempotency_key_required' },
    });
    expect((await call('POST', '/v1/payments', { body, idempotencyKey: 'k'.repeat(256) })).body).toEqual({
      error: 'idempotency_key_required',
    });
    const invalid = [
      { ...body, amountMinor: '12.50' },
      { ...body, currency: 'eur' },
      { ...body, reference: { tenantId, orderRef: body.reference.orderRef } },
      { ...body, unexpected: true },
      bankPayment('bank_ok', { callbackUrl: undefined }),
      bankPayment('bank_ok', { callbackUrl: 'ftp://127.0.0.1/callbacks' }),
    ];
    for (const payment of invalid) expect((await pay(payment)).body).toEqual({ error: 'invalid_request' });
    const unreadable = await fetch(`${sandbox.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${merchantKey}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: '{"appId":',
    });
    expect([unreadable.status, await unreadable.json()]).toEqual([400, { error: 'invalid_request' }]);
    for (const payment of [
      { ...body, direction: 'CREDIT' },
      { ...body, appId: 'SANDBOX_VOUCHERS' },
      bankPayment('bank_ok', { paymentMethod: 'BANK_TRANSFER', direction: 'DEBIT' }),
    ]) {
      expect(await pay(payment)).toEqual({ status: 400, body: { error: 'unsupported_payment' } });
    }
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toEqual([]);
  });

  it.each([
    ['card_ok', { status: 'SETTLED' }],
    ['card_declined', { status: 'DECLINED', declineCode: 'do_not_honor', retryable: false }],
    ['card_fraud', { status: 'DECLINED', declineCode: 'suspected_fraud', retryable: false }],
    ['card_insufficient_funds', { status: 'DECLINED', declineCode: 'insufficient_funds', retryable: true }],
  ])('answers a %s card payment at once: %o', async (instrument, outcome) => {
    const body = cardPayment(instrument);
    const res = await pay(body);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^sbx_[0-9a-f-]{36}$/),
      appId: 'SANDBOX_CARD',
      ...outcome,
      amountMinor: body.amountMinor,
      currency: body.currency,
      direction: 'DEBIT',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect((await call('GET', `/v1/payments/${res.body.id}`)).body).toEqual(res.body);
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toMatchObject([
      { providerRef: res.body.id, status: outcome.status },
    ]);
  });

  it('answers API calls only after the latency it is set to, refusing a latency out of range', async () => {
    const setLatency = (ms: unknown) =>
      fetch(`${sandbox.url}/latency`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms }),
      });
    for (const wrong of [-1, 1.5, '300', 60_001]) expect((await setLatency(wrong)).status, String(wrong)).toBe(400);
    expect((await setLatency(700)).status).toBe(204);
    try {
      const started = performance.now();
      const created = await pay(cardPayment('card_ok'));
      expect(created.status).toBe(201);
      expect(performance.now() - started).toBeGreaterThanOrEqual(700);
    } finally {
      expect((await setLatency(0)).status).toBe(204);
    }
  });

  it('fails the first card_flaky call for a key without recording it, and settles the retry once', async () => {
    const body = cardPayment('card_flaky');
    const key = randomUUID();
    expect(await pay(body, key)).toEqual({ status: 503, body: { error: 'temporarily_unavailable' } });
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toEqual([]);
    const retried = await pay(body, key);
    expect([retried.status, retried.body.status]).toEqual([201, 'SETTLED']);
    expect(await pay(body, key)).toEqual({ status: 200, body: retried.body });
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toMatchObject([
      { providerRef: retried.body.id, idempotencyKey: key },
    ]);
  });

  it('answers card_unavailable with 503 every time and records nothing', async () => {
    const body = cardPayment('card_unavailable');
    const key = randomUUID();
    for (let call = 0; call < 3; call += 1)
      expect(await pay(body, key)).toEqual({ status: 503, body: { error: 'temporarily_unavailable' } });
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toEqual([]);
  });

  it('charges a card_timeout payment before the client gives up, so the retry finds the one charge', async () => {
    const body = cardPayment('card_timeout');
    const key = randomUUID();
    const client = new AbortController();
    const asked = pay(body, key, { signal: client.signal }).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    // The client gives up once the charge is made, while the provider still holds its answer.
    await eventually(
      () => sandbox.ledger({ orderRef: body.reference.orderRef }),
      (items) => items.length === 1,
      { what: 'the charge made, its answer held', intervalMs: 20 },
    );
    client.abort();
    expect(await asked).toMatch(/abort/i);

    const retried = await pay(body, key);
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe('SETTLED');
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toEqual([
      expect.objectContaining({ providerRef: retried.body.id, status: 'SETTLED' }),
    ]);
  });

  it('replays the same key and body, refuses the key with another body, and scopes keys by merchant', async () => {
    const body = cardPayment('card_ok');
    const key = randomUUID();
    const first = await pay(body, key);
    expect(first.status).toBe(201);
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    expect(await pay(reordered, key)).toEqual({ status: 200, body: first.body });
    expect(await pay({ ...body, amountMinor: '1251' }, key)).toEqual({
      status: 422,
      body: { error: 'idempotency_key_reused' },
    });
    expect(await pay({ ...body, reference: { ...body.reference, instructionRef: 'other' } }, key)).toEqual({
      status: 422,
      body: { error: 'idempotency_key_reused' },
    });

    const otherMerchant = await pay(body, key, { apiKey: otherMerchantKey });
    expect(otherMerchant.status).toBe(201);
    expect(otherMerchant.body.id).not.toBe(first.body.id);
    const ledger = await sandbox.ledger({ orderRef: body.reference.orderRef });
    expect(ledger.map((item) => item.providerRef)).toEqual([first.body.id, otherMerchant.body.id]);
  });

  it('settles a bank debit later and calls back with a signature made with the API key', async () => {
    const body = bankPayment('bank_ok');
    const key = randomUUID();
    const created = await pay(body, key);
    expect([created.status, created.body.status]).toEqual([201, 'PENDING']);

    const [callback] = await callbacksArrived(created.body.id);
    expect(callback.payload).toEqual({
      id: created.body.id,
      appId: 'SANDBOX_BANK',
      status: 'SETTLED',
      idempotencyKey: key,
      reference: body.reference,
      amountMinor: body.amountMinor,
      currency: body.currency,
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(callback.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySandboxCallback(merchantKey, callback.body, callback.signature)).toBe(true);
    expect(
      verifySandboxCallback(merchantKey, callback.body.replace(body.amountMinor, '999999'), callback.signature),
    ).toBe(false);
    expect(verifySandboxCallback(otherMerchantKey, callback.body, callback.signature)).toBe(false);
    const signedAt = Number(/t=(\d+)/.exec(callback.signature ?? '')?.[1]);
    expect(verifySandboxCallback(merchantKey, callback.body, callback.signature, { nowSeconds: signedAt + 301 })).toBe(
      false,
    );
    expect(
      verifySandboxCallback(merchantKey, callback.body, callback.signature, {
        nowSeconds: signedAt + 301,
        toleranceSeconds: 600,
      }),
    ).toBe(true);

    expect((await call('GET', `/v1/payments/${created.body.id}`)).body).toMatchObject({ status: 'SETTLED' });
    // A replay answers with the payment as it is now.
    expect(await pay(body, key)).toMatchObject({ status: 200, body: { id: created.body.id, status: 'SETTLED' } });
    expect(await sandbox.ledger({ orderRef: body.reference.orderRef })).toMatchObject([
      { providerRef: created.body.id, status: 'SETTLED' },
    ]);
  });

  it.each([
    ['bank_insufficient_funds', 'BANK_DEBIT', 'insufficient_funds', true],
    ['bank_account_closed', 'BANK_TRANSFER', 'account_closed', false],
  ] as const)('declines a %s %s payment in its callback', async (instrument, paymentMethod, declineCode, retryable) => {
    const created = await pay(
      bankPayment(instrument, paymentMethod === 'BANK_TRANSFER' ? { paymentMethod, direction: 'CREDIT' } : {}),
    );
    expect(created.body.status).toBe('PENDING');
    const [callback] = await callbacksArrived(created.body.id);
    expect(callback.payload).toMatchObject({ status: 'DECLINED', declineCode, retryable });
    expect(verifySandboxCallback(merchantKey, callback.body, callback.signature)).toBe(true);
    expect((await call('GET', `/v1/payments/${created.body.id}`)).body).toMatchObject({
      status: 'DECLINED',
      declineCode,
      retryable,
    });
  });

  it('settles a bank_no_callback payment without calling back', async () => {
    const silent = await pay(bankPayment('bank_no_callback'));
    await eventually(
      async () => (await call('GET', `/v1/payments/${silent.body.id}`)).body.status,
      (status) => status === 'SETTLED',
      { ...poll, what: 'settlement' },
    );
    // A payment made after the silent one settled calls back after it would have: once its callback is in, none is coming.
    const later = await pay(bankPayment('bank_ok'));
    await callbacksArrived(later.body.id);
    expect(receiver.callbacksFor(silent.body.id)).toEqual([]);
  });

  it('delivers a callback again when the receiver fails, signing each attempt', async () => {
    const created = await pay(
      bankPayment('bank_ok', {
        reference: { tenantId, orderRef: `refuse-once-${randomUUID()}`, instructionRef: 'i-1' },
      }),
    );
    const callbacks = await callbacksArrived(created.body.id, 2);
    expect(callbacks.map((c) => c.answeredStatus)).toEqual([500, 204]);
    expect(callbacks[1].body).toBe(callbacks[0].body);
    for (const c of callbacks) expect(verifySandboxCallback(merchantKey, c.body, c.signature)).toBe(true);
  });

  it('lists the voucher catalog', async () => {
    const res = await call('GET', '/v1/vouchers');
    expect(res).toEqual({ status: 200, body: { items: JSON.parse(JSON.stringify(VOUCHER_CATALOG)) } });
    expect(res.body.items.length).toBeGreaterThanOrEqual(8);
  });

  it('pays out fixed and variable vouchers with a fresh code each', async () => {
    const fixed = await pay(voucherPayout('amazon-uk-25', 'GBP', '2500'));
    const variable = await pay(voucherPayout('amazon-de', 'EUR', '1234'));
    for (const res of [fixed, variable]) {
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        appId: 'SANDBOX_VOUCHERS',
        status: 'SETTLED',
        direction: 'CREDIT',
        voucherCode: expect.stringMatching(VOUCHER_CODE),
      });
    }
    expect(fixed.body.voucherCode).not.toBe(variable.body.voucherCode);
    expect((await call('GET', `/v1/payments/${fixed.body.id}`)).body.voucherCode).toBe(fixed.body.voucherCode);
  });

  it.each([
    ['an unknown voucher', voucherPayout('netflix-xx', 'EUR', '2500'), 'invalid_voucher'],
    ['a value the fixed voucher is not sold in', voucherPayout('amazon-uk-25', 'GBP', '2000'), 'invalid_amount'],
    ['a currency the voucher is not sold in', voucherPayout('amazon-uk-25', 'EUR', '2500'), 'invalid_amount'],
    ['an amount above the variable range', voucherPayout('amazon-de', 'EUR', '50001'), 'invalid_amount'],
    ['an amount below the variable range', voucherPayout('amazon-de', 'EUR', '99'), 'invalid_amount'],
  ])('declines a payout of %s', async (_case, body, declineCode) => {
    const res = await pay(body);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'DECLINED', declineCode, retryable: false });
    expect(res.body.voucherCode).toBeUndefined();
  });

  it('filters its ledger by tenant and order, in creation order', async () => {
    const [tenantA, tenantB] = [`tenant-${randomUUID()}`, `tenant-${randomUUID()}`];
    const made = [];
    for (const [tenant, orderRef] of [
      [tenantA, 'order-1'],
      [tenantA, 'order-2'],
      [tenantA, 'order-1'],
      [tenantB, 'order-1'],
    ]) {
      made.push(
        (await pay(cardPayment('card_ok', { reference: { tenantId: tenant, orderRef, instructionRef: randomUUID() } })))
          .body.id,
      );
    }
    const refs = async (filter: { tenantId?: string; orderRef?: string }) =>
      (await sandbox.ledger(filter))
        .filter((item) => [tenantA, tenantB].includes(item.tenantId))
        .map((item) => item.providerRef);
    expect(await refs({ tenantId: tenantA })).toEqual([made[0], made[1], made[2]]);
    expect(await refs({ tenantId: tenantA, orderRef: 'order-1' })).toEqual([made[0], made[2]]);
    expect(await refs({ orderRef: 'order-1' })).toEqual([made[0], made[2], made[3]]);
    expect(await refs({})).toEqual(made);
    expect(await sandbox.ledger({ tenantId: tenantB })).toEqual([
      {
        kind: 'PAYMENT',
        idempotencyKey: expect.any(String),
        providerRef: made[3],
        paymentRef: null,
        appId: 'SANDBOX_CARD',
        tenantId: tenantB,
        orderRef: 'order-1',
        instructionRef: expect.any(String),
        direction: 'DEBIT',
        amountMinor: '1250',
        currency: 'EUR',
        status: 'SETTLED',
        code: null,
        instrument: expect.any(String),
        createdAt: expect.any(String),
      },
    ]);
  });

  it('refunds a settled card payment at once, in parts, once per key, never beyond the payment', async () => {
    const payment = await pay(cardPayment('card_ok', { callbackUrl: receiver.url }));
    const refund = (amountMinor: string, key = randomUUID(), extra: Record<string, unknown> = {}) =>
      call('POST', '/v1/refunds', {
        idempotencyKey: key,
        body: {
          paymentId: payment.body.id,
          amountMinor,
          currency: 'EUR',
          reference: { tenantId, orderRef: 'o', instructionRef: 'i' },
          ...extra,
        },
      });
    const key = randomUUID();
    const first = await refund('500', key);
    expect(first).toMatchObject({
      status: 201,
      body: { object: 'refund', status: 'SUCCEEDED', paymentId: payment.body.id },
    });
    // The same key and body: the same refund, once. Another body under it: refused.
    expect(await refund('500', key)).toMatchObject({ status: 200, body: { id: first.body.id } });
    expect((await refund('600', key)).status).toBe(422);
    expect((await refund('750')).body).toMatchObject({ status: 'SUCCEEDED' });
    expect((await refund('1')).body).toMatchObject({ status: 'FAILED', failureCode: 'amount_exceeds_payment' });
    expect((await refund('1', randomUUID(), { currency: 'GBP' })).body).toMatchObject({
      failureCode: 'currency_mismatch',
    });
    expect((await refund('1', randomUUID(), { paymentId: `sbx_${randomUUID()}` })).status).toBe(404);
    expect((await call('GET', `/v1/refunds/${first.body.id}`)).body).toMatchObject({
      status: 'SUCCEEDED',
      amountMinor: '500',
    });
    expect((await call('GET', `/v1/refunds/${first.body.id}`, { apiKey: otherMerchantKey })).status).toBe(404);
    const ledger = await sandbox.ledger({ tenantId });
    const mine = ledger.filter((i) => i.paymentRef === payment.body.id);
    expect(mine.map((i) => [i.kind, i.amountMinor, i.status])).toEqual([
      ['REFUND', '500', 'SUCCEEDED'],
      ['REFUND', '750', 'SUCCEEDED'],
      ['REFUND', '1', 'FAILED'],
      ['REFUND', '1', 'FAILED'],
    ]);
  });

  it('refunds a bank debit later, calling back signed, and refuses to refund one taken back', async () => {
    const debit = await pay(bankPayment('bank_ok'));
    await callbacksArrived(debit.body.id);
    const created = await call('POST', '/v1/refunds', {
      idempotencyKey: randomUUID(),
      body: {
        paymentId: debit.body.id,
        amountMinor: '1250',
        currency: 'EUR',
        reference: { tenantId, orderRef: 'o', instructionRef: 'i' },
        callbackUrl: receiver.url,
      },
    });
    expect(created.body).toMatchObject({ object: 'refund', status: 'PENDING' });
    const [callback] = await callbacksArrived(created.body.id);
    expect(callback.payload).toMatchObject({ object: 'refund', id: created.body.id, status: 'SUCCEEDED' });
    expect(verifySandboxCallback(merchantKey, callback.body, callback.signature)).toBe(true);

    const returned = await pay(bankPayment('bank_returned'));
    const [, taken] = await callbacksArrived(returned.body.id, 2);
    // It says what it took back: the whole payment, none of it refunded.
    expect(taken.payload).toMatchObject({
      status: 'RETURNED',
      returnCode: 'insufficient_funds',
      returnedAmountMinor: returned.body.amountMinor,
    });
    expect((await call('GET', `/v1/payments/${returned.body.id}`)).body).toMatchObject({
      status: 'RETURNED',
      returnedAmountMinor: returned.body.amountMinor,
    });
    const late = await call('POST', '/v1/refunds', {
      idempotencyKey: randomUUID(),
      body: {
        paymentId: returned.body.id,
        amountMinor: '1',
        currency: 'EUR',
        reference: { tenantId, orderRef: 'o', instructionRef: 'i' },
      },
    });
    expect(late.body).toMatchObject({ status: 'FAILED', failureCode: 'payment_returned' });
  });

  it('takes back a bank_returned debit and a card_chargeback payment after the delay, says so when asked, and keeps both in its ledger', async () => {
    const debit = await pay(bankPayment('bank_returned'));
    const card = await pay(cardPayment('card_chargeback', { callbackUrl: receiver.url }));
    expect(card.body.status).toBe('SETTLED');
    const [chargeback] = await callbacksArrived(card.body.id);
    expect(chargeback.payload).toMatchObject({ status: 'CHARGED_BACK', returnCode: 'fraudulent' });
    await callbacksArrived(debit.body.id, 2);
    expect((await call('GET', `/v1/payments/${debit.body.id}`)).body).toMatchObject({
      status: 'RETURNED',
      returnCode: 'insufficient_funds',
    });
    const ledger = await sandbox.ledger({ tenantId });
    for (const [payment, kind, code] of [
      [debit, 'RETURN', 'insufficient_funds'],
      [card, 'CHARGEBACK', 'fraudulent'],
    ] as const) {
      expect(ledger.filter((i) => i.providerRef === payment.body.id || i.paymentRef === payment.body.id)).toMatchObject(
        [
          { kind: 'PAYMENT', status: kind === 'RETURN' ? 'RETURNED' : 'CHARGED_BACK', code },
          { kind, amountMinor: '1250', code, paymentRef: payment.body.id },
        ],
      );
    }
  });

  it('remembers every payment and key across a restart, and settles what was pending', async () => {
    const durable = await startSandbox({ settleMs: 3000 });
    try {
      const card = { body: cardPayment('card_ok'), key: randomUUID() };
      const bank = { body: bankPayment('bank_ok'), key: randomUUID() };
      const voucher = { body: voucherPayout('zalando-eu', 'EUR', '5000'), key: randomUUID() };
      const before: { id: string; status: string; voucherCode?: string }[] = [];
      for (const { body, key } of [card, bank, voucher]) before.push((await pay(body, key, { url: durable.url })).body);
      expect(before.map((payment) => payment.status)).toEqual(['SETTLED', 'PENDING', 'SETTLED']);

      const stoppedAt = Date.now();
      await durable.restart();

      for (const [index, { body, key }] of [card, bank, voucher].entries()) {
        const replay = await pay(body, key, { url: durable.url });
        expect(replay.status).toBe(200);
        expect([replay.body.id, replay.body.voucherCode]).toEqual([before[index].id, before[index].voucherCode]);
        expect(await durable.ledger({ orderRef: body.reference.orderRef })).toHaveLength(1);
      }
      expect(await pay({ ...card.body, amountMinor: '1' }, card.key, { url: durable.url })).toMatchObject({
        status: 422,
      });
      expect((await call('GET', `/v1/payments/${before[0].id}`, { url: durable.url })).status).toBe(200);

      const [callback] = await callbacksArrived(before[1].id);
      expect(callback.payload).toMatchObject({ status: 'SETTLED', idempotencyKey: bank.key });
      // Settled by the new process: the old one was stopped well before the payment was due.
      expect(Date.parse(callback.payload.occurredAt)).toBeGreaterThan(stoppedAt);
      expect(verifySandboxCallback(merchantKey, callback.body, callback.signature)).toBe(true);
    } finally {
      await durable.close();
    }
  });
});

describe('the sandbox ledger file', () => {
  it('drops a last line torn by a crash and appends after it on a line of its own', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sandbox-ledger-'));
    try {
      const record = (id: string, status: PaymentRecord['status']): PaymentRecord => ({
        id,
        apiKey: merchantKey,
        idempotencyKey: id,
        request: cardPayment('card_ok'),
        status,
        createdAt: '2030-01-01T00:00:00.000Z',
        updatedAt: '2030-01-01T00:00:00.000Z',
      });
      writeFileSync(
        join(dataDir, 'ledger.jsonl'),
        `${JSON.stringify(record('a', 'PENDING'))}\n${JSON.stringify(record('a', 'SETTLED'))}\n{"id":"b","ap`,
      );
      const ledger = Ledger.open(dataDir);
      expect(ledger.list().map((r) => [r.id, r.status])).toEqual([['a', 'SETTLED']]);
      ledger.append(record('c', 'SETTLED'));
      ledger.close();

      const reopened = Ledger.open(dataDir);
      expect(reopened.list().map((r) => r.id)).toEqual(['a', 'c']);
      expect(reopened.findByIdempotencyKey(merchantKey, 'c')?.id).toBe('c');
      expect(reopened.findByIdempotencyKey(otherMerchantKey, 'c')).toBeUndefined();
      reopened.close();
      expect(readFileSync(join(dataDir, 'ledger.jsonl'), 'utf8').split('\n')).toHaveLength(4);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

interface ReceivedCallback {
  signature: string | undefined;
  /** The exact bytes received, as a receiver verifies them. */
  body: string;
  payload: any;
  answeredStatus: number;
}

interface CallbackReceiver {
  url: string;
  callbacksFor(paymentId: string): ReceivedCallback[];
  close(): Promise<void>;
}

/** A merchant's callback endpoint on loopback. It refuses the first delivery of orders named `refuse-once-…`. */
async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const received: ReceivedCallback[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const payload = JSON.parse(body);
      const refuse =
        String(payload.reference?.orderRef).startsWith('refuse-once-') &&
        !received.some((c) => c.payload.id === payload.id);
      const answeredStatus = refuse ? 500 : 204;
      received.push({
        signature: req.headers[SANDBOX_SIGNATURE_HEADER] as string | undefined,
        body,
        payload,
        answeredStatus,
      });
      res.writeHead(answeredStatus).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks`,
    callbacksFor: (paymentId) => received.filter((c) => c.payload.id === paymentId),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Waits until `count` callbacks for the payment have come in. */
function callbacksArrived(paymentId: string, count = 1): Promise<ReceivedCallback[]> {
  return eventually(
    () => Promise.resolve(receiver.callbacksFor(paymentId)),
    (list) => list.length >= count,
    { ...poll, what: `${count} callback(s) for ${paymentId}` },
  );
}

describe('the sandbox provider’s hosted forms', () => {
  const returnUrl = 'http://127.0.0.1:9/pay/link/return?o=SANDBOX_CARD%3ACARD';

  async function session(paymentMethod: string, apiKey = merchantKey) {
    const res = await call('POST', '/v1/hosted-sessions', { apiKey, body: { paymentMethod, returnUrl } });
    expect(res.status).toBe(201);
    return res.body as { id: string; url: string };
  }

  const submit = (url: string, fields: Record<string, string>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
    });

  it('checks a card (Luhn, expiry, code), sends the customer back with a one-time reference, and exchanges it once', async () => {
    const { id, url } = await session('CARD');
    expect(url).toBe(`${sandbox.url}/hosted/${id}`);
    const page = await fetch(url);
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self' http://127.0.0.1:9");
    for (const [fields, says] of [
      [{ number: '4242 4242 4242 4241', expiry: '12/30', cvc: '123' }, 'not valid'],
      [{ number: '4242 4242 4242 4242', expiry: '01/20', cvc: '123' }, 'expired'],
      [{ number: '4242 4242 4242 4242', expiry: '13/30', cvc: '123' }, 'MM/YY'],
      [{ number: '4242 4242 4242 4242', expiry: '12/30', cvc: '12' }, 'security code'],
    ] as const) {
      const refused = await submit(url, fields);
      expect(refused.status).toBe(422);
      expect(await refused.text()).toContain(says);
    }
    const back = await submit(url, { number: '4000 0000 0000 0002', expiry: '12/30', cvc: '123', name: 'Ada' });
    expect(back.status).toBe(303);
    const location = new URL(back.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('http://127.0.0.1:9/pay/link/return');
    expect(location.searchParams.get('o')).toBe('SANDBOX_CARD:CARD');
    expect(location.searchParams.get('session')).toBe(id);
    const ref = location.searchParams.get('ref')!;
    // Submitted once: the form is spent.
    expect((await fetch(url)).status).toBe(404);

    expect(
      (await call('POST', `/v1/hosted-sessions/${id}/exchange`, { apiKey: otherMerchantKey, body: { ref } })).status,
    ).toBe(404);
    expect((await call('POST', `/v1/hosted-sessions/${id}/exchange`, { body: { ref: 'ref_wrong' } })).status).toBe(404);
    const exchanged = await call('POST', `/v1/hosted-sessions/${id}/exchange`, { body: { ref } });
    expect(exchanged).toEqual({
      status: 200,
      body: {
        token: expect.stringMatching(/^tok_[A-Za-z]{24}$/),
        paymentMethod: 'CARD',
        display: { brand: 'visa', last4: '0002', expMonth: 12, expYear: 2030, holderName: 'Ada' },
      },
    });
    expect(await call('POST', `/v1/hosted-sessions/${id}/exchange`, { body: { ref } })).toEqual({
      status: 409,
      body: { error: 'already_exchanged' },
    });

    // Paid with, the token behaves as its test card: declined. Another merchant's use of it pays nothing.
    const declined = await pay(cardPayment(exchanged.body.token));
    expect(declined.body).toMatchObject({ status: 'DECLINED', declineCode: 'do_not_honor' });
    const stolen = await pay(cardPayment(exchanged.body.token), randomUUID(), { apiKey: otherMerchantKey });
    expect(stolen.body).toMatchObject({ status: 'DECLINED', declineCode: 'invalid_token' });
  });

  it('checks an IBAN with its checksum, takes the mandate’s consent, and answers the mandate with the token', async () => {
    const { id, url } = await session('BANK_DEBIT');
    const badIban = await submit(url, { iban: 'GB33 BUKB 2020 1555 5555 56', name: 'Ada', consent: 'yes' });
    expect(badIban.status).toBe(422);
    const noConsent = await submit(url, { iban: 'GB33 BUKB 2020 1555 5555 55', name: 'Ada' });
    expect(await noConsent.text()).toContain('authorise');
    const back = await submit(url, { iban: 'GB33 BUKB 2020 1555 5555 55', name: 'Ada', consent: 'yes' });
    expect(back.status).toBe(303);
    const ref = new URL(back.headers.get('location')!).searchParams.get('ref')!;
    const exchanged = await call('POST', `/v1/hosted-sessions/${id}/exchange`, { body: { ref } });
    expect(exchanged.body).toEqual({
      token: expect.stringMatching(/^tok_/),
      paymentMethod: 'BANK_DEBIT',
      display: { maskedIban: 'GB33 •••• 5555', holderName: 'Ada' },
      mandate: {
        mandateRef: expect.stringMatching(/^MDT-[0-9A-F]{12}$/),
        status: 'ACTIVE',
        signedAt: expect.any(String),
      },
    });
  });
});

function newApiKey(): string {
  return newSandboxApiKey();
}

function cardPayment(instrument: string, overrides: Record<string, unknown> = {}) {
  return {
    appId: 'SANDBOX_CARD',
    paymentMethod: 'CARD',
    direction: 'DEBIT',
    amountMinor: '1250',
    currency: 'EUR',
    country: 'DE',
    instrument,
    reference: { tenantId, orderRef: `order-${randomUUID()}`, instructionRef: 'i-1' },
    ...overrides,
  } as any;
}

function bankPayment(instrument: string, overrides: Record<string, unknown> = {}) {
  return cardPayment(instrument, {
    appId: 'SANDBOX_BANK',
    paymentMethod: 'BANK_DEBIT',
    callbackUrl: receiver.url,
    ...overrides,
  });
}

function voucherPayout(voucherId: string, currency: string, amountMinor: string) {
  return cardPayment(voucherId, {
    appId: 'SANDBOX_VOUCHERS',
    paymentMethod: 'VOUCHER',
    direction: 'CREDIT',
    currency,
    amountMinor,
    country: 'GB',
  });
}

interface CallOptions {
  url?: string;
  apiKey?: string;
  /** The whole Authorization header; undefined sends none. Wins over apiKey. */
  authorization?: string;
  idempotencyKey?: string;
  body?: unknown;
  signal?: AbortSignal;
}

async function call(method: string, path: string, options: CallOptions = {}): Promise<{ status: number; body: any }> {
  const authorization = 'authorization' in options ? options.authorization : `Bearer ${options.apiKey ?? merchantKey}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  const res = await fetch(`${options.url ?? sandbox.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  return { status: res.status, body: await res.json() };
}

function pay(body: unknown, idempotencyKey: string = randomUUID(), options: CallOptions = {}) {
  return call('POST', '/v1/payments', { ...options, idempotencyKey, body });
}
