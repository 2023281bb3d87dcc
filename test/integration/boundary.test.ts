import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_BODY_DEPTH } from '../../api/http/json-body.js';
import { PaymentInstruction } from '../../db/entities/index.js';
import { issuePaymentLink, paymentLinkKeys } from '../../orders/payment-link-token.js';
import { eventually } from '../support/eventually.js';
import { post, visit } from '../support/pay-page-client.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

// What reaches the API from outside, bounded: request bodies, keys reused across changes, links
// to the payment page (rotation, revocation, payouts), the page's own errors.

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

const later = (days: number) => new Date(Date.now() + days * 24 * 3600_000).toISOString();

function instruction(ref: string, overrides: Record<string, unknown> = {}) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '12.00',
    currency: 'EUR',
    country: 'FR',
    openDate: later(0),
    dueDate: later(30),
    financialInstrumentId: 'card_ok',
    ...overrides,
  };
}

async function order(tenant: TenantFixture, orderRef: string, instructions = [instruction('a')]) {
  const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

/** A payment link; with no `body`, the request sends none (every field of it is optional). */
async function link(tenant: TenantFixture, orderRef: string, body?: Record<string, unknown>) {
  const res = await tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/payment-link`, {
    body,
  });
  // A link's token is the key to its page: it must never reach a log.
  if (res.status === 201) system.issuedSecrets.push(String(res.body.url).split('/pay/')[1]);
  return res;
}

/** The statuses of an opened form submitted with a new card, and of a return from the provider's form. */
async function submitAndReturn(url: string, opened: Awaited<ReturnType<typeof visit>>): Promise<number[]> {
  const submitted = await post(
    url,
    {
      option: 'SANDBOX_CARD:CARD',
      'instrument:SANDBOX_CARD:CARD': 'new',
      csrf: opened.csrf!,
      form: opened.form!,
      amount: opened.amount!,
    },
    opened.cookie,
  );
  const returned = await fetch(
    `${url}/return?o=SANDBOX_CARD%3ACARD&f=${opened.form}&s=0&a=${opened.amount}&session=s_1&ref=r_1`,
    { redirect: 'manual' },
  );
  return [submitted.status, returned.status];
}

const page = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', html: await res.text() };
};

describe('a request body', () => {
  it(`nested deeper than ${MAX_BODY_DEPTH} levels is a 400 body_too_deep, however deep, before anything reads it`, async () => {
    for (const depth of [MAX_BODY_DEPTH + 1, 20_000]) {
      const body = '['.repeat(depth) + ']'.repeat(depth);
      const res = await fetch(`${system.api.url}/v1/identity/hmac`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.status, `depth ${depth}`).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('body_too_deep');
    }
    // As deep as allowed, it goes on to be judged for what it says.
    const tenant = await system.newTenant({ paymentSetup: false });
    const deepest = { nested: JSON.parse('['.repeat(MAX_BODY_DEPTH - 1) + ']'.repeat(MAX_BODY_DEPTH - 1)) as unknown };
    const res = await tenant.client.request('POST', '/v1/order-management', { body: deepest });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('an Idempotency-Key', () => {
  it('on a change is recorded like on a create: replayed with its answer, refused with another request', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'keyed', [instruction('a'), instruction('b')]);
    const key = `key-${randomBytes(6).toString('hex')}`;
    const cancel = () =>
      tenant.client.request('POST', '/v1/order-management/keyed/instructions/a/cancel', {
        headers: { 'idempotency-key': key },
      });
    const first = await cancel();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const replay = await cancel();
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    // The same key with an amendment is never taken for the cancel: it is refused, and amends nothing.
    const amend = await tenant.client.request('PATCH', '/v1/order-management/keyed/instructions/b', {
      headers: { 'idempotency-key': key },
      body: { amount: '99.00' },
    });
    expect(amend.status).toBe(422);
    expect(amend.body.code).toBe('idempotency_key_reused');
    const shown = await tenant.client.request('GET', '/v1/order-management/keyed');
    expect(shown.body.instructions.map((i: any) => [i.instructionRef, i.status, i.amount])).toEqual([
      ['a', 'CANCELLED', '12.00'],
      ['b', expect.any(String), '12.00'],
    ]);
  });
});

describe('a payment link', () => {
  it('opens after a rotation of the master key while the previous key is kept, and not once it is dropped', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'rotated');
    const { url } = (await link(tenant, 'rotated')).body;
    const token = url.split('/pay/')[1];
    const newKey = randomBytes(32).toString('base64');
    const rotated = await system.startApi({ masterKeys: { current: newKey, previous: [system.masterKey] } });
    const dropped = await system.startApi({ masterKeys: { current: newKey } });
    try {
      expect((await page(`${rotated.url}/pay/${token}`)).status).toBe(200);
      expect((await page(`${dropped.url}/pay/${token}`)).status).toBe(404);
    } finally {
      await rotated.close();
      await dropped.close();
    }
  });

  it('opens with a __Host- CSRF cookie where customers reach it over HTTPS, though the request here is plain HTTP, and reads only that one', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'behind-tls');
    const { url } = (await link(tenant, 'behind-tls')).body;
    const token = url.split('/pay/')[1];
    await eventually(
      () => visit(url),
      (shown) => shown.csrf !== undefined,
      { what: 'the form shown (the instruction open)' },
    );
    // As behind a proxy that ends TLS (not trusted for X-Forwarded-Proto): the public address is HTTPS.
    const behindTls = await system.startApi({ settings: { publicApiUrl: 'https://pay.example.com' } });
    try {
      const cookieOf = async (base: string) => {
        const [pair, ...attributes] = (await fetch(`${base}/pay/${token}`)).headers.get('set-cookie')!.split(/;\s*/);
        return [pair.split('=')[0], ...attributes.sort()];
      };
      expect(await cookieOf(behindTls.url)).toEqual([
        '__Host-pay_csrf',
        'HttpOnly',
        'Path=/',
        'SameSite=Lax',
        'Secure',
      ]);
      expect(await cookieOf(system.api.url)).toEqual(['pay_csrf', 'HttpOnly', 'Path=/pay', 'SameSite=Lax']);
      // Its form is taken with that cookie (on to the provider's form); with the same secret under the
      // name a sibling subdomain could plant, it has expired.
      const opened = await visit(`${behindTls.url}/pay/${token}`);
      const fields = {
        option: 'SANDBOX_CARD:CARD',
        'instrument:SANDBOX_CARD:CARD': 'new',
        csrf: opened.csrf!,
        form: opened.form!,
        amount: opened.amount!,
      };
      const planted = opened.cookie.replace('__Host-pay_csrf', 'pay_csrf');
      expect((await post(`${behindTls.url}/pay/${token}`, fields, planted)).status).toBe(403);
      expect((await post(`${behindTls.url}/pay/${token}`, fields, opened.cookie)).status).toBe(303);
    } finally {
      await behindTls.close();
    }
  });

  it('signed with our key but naming another instruction than its row, or a row gone, is not valid: 404', async () => {
    const [tenant, other] = [await system.newTenant(), await system.newTenant()];
    await order(tenant, 'named', [instruction('a'), instruction('b')]);
    await order(other, 'named');
    const rowId = (t: TenantFixture, ref: string) =>
      system.orm.em
        .fork()
        .findOneOrFail(PaymentInstruction, { tenantId: t.tenantId, order: { orderRef: 'named' }, instructionRef: ref })
        .then((row) => row.instructionId);
    const claims = {
      tenantId: tenant.tenantId,
      orderRef: 'named',
      instructionRef: 'a',
      instructionId: await rowId(tenant, 'a'),
    };
    const keys = paymentLinkKeys({ current: system.masterKey });
    const base = (await link(tenant, 'named')).body.url.split('/pay/')[0];
    const shown = async (named: typeof claims) =>
      page(`${base}/pay/${await issuePaymentLink(keys, named, new Date(Date.now() + 60_000))}`);
    // As issued, it works: what follows differs from it in one claim each.
    expect((await shown(claims)).status).toBe(200);
    for (const named of [
      { ...claims, instructionRef: 'b' },
      { ...claims, orderRef: 'other-order' },
      { ...claims, instructionId: await rowId(tenant, 'b'), instructionRef: 'a' },
      // Another tenant's row, claimed for this tenant.
      { ...claims, instructionId: await rowId(other, 'a') },
      // A row that no longer exists (an instruction re-created has another id).
      { ...claims, instructionId: randomUUID() },
    ]) {
      const answer = await shown(named);
      expect([answer.status, answer.html.includes('no longer exists')], JSON.stringify(named)).toEqual([404, true]);
    }
  });

  it('can be revoked: every link issued until then is withdrawn (its page, its form, its return), one issued after works', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'revoked');
    const before = [(await link(tenant, 'revoked')).body.url, (await link(tenant, 'revoked')).body.url];
    for (const url of before) expect((await page(url)).status).toBe(200);
    // A form opened before the revocation, submitted after it; and a return from the provider's.
    const opened = await eventually(
      () => visit(before[0]),
      (shown) => shown.csrf !== undefined,
      { what: 'the form shown (the instruction open)' },
    );
    const revoked = await tenant.client.request('DELETE', '/v1/order-management/revoked/instructions/a/payment-link');
    expect(revoked.status).toBe(204);
    for (const url of before) {
      const shown = await page(url);
      expect(shown.status).toBe(410);
      expect(shown.html).toContain('This link has been withdrawn');
    }
    expect(await submitAndReturn(before[0], opened)).toEqual([410, 410]);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'revoked' })).toEqual([]);
    const after = (await link(tenant, 'revoked')).body.url;
    expect((await page(after)).status).toBe(200);
    const audit = await tenant.account.request('GET', '/v1/account/audit');
    const actions = audit.body.items.map((e: any) => e.action);
    expect(actions.filter((a: string) => a === 'payment-link.issue')).toHaveLength(3);
    expect(actions).toContain('payment-link.revoke');
    expect(JSON.stringify(audit.body)).not.toContain(after.split('/pay/')[1]);
  });

  it('expired while its form was open: the form submitted and the return from the provider answer 410, charging nothing', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'lapsed');
    const { url } = (await link(tenant, 'lapsed', { expiresInSeconds: 60 })).body;
    const opened = await eventually(
      () => visit(url),
      (shown) => shown.csrf !== undefined,
      { what: 'the form shown (the instruction open)' },
    );
    // Two minutes on (this process's clock stands for the API's): the link lapsed while the customer
    // was at the provider's form.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 120_000 });
    try {
      expect(await submitAndReturn(url, opened)).toEqual([410, 410]);
      expect((await page(url)).html).toContain('This link has expired');
    } finally {
      vi.useRealTimers();
    }
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'lapsed' })).toEqual([]);
  });

  it('stays revoked until the latest revocation: one committing last with an earlier time moves nothing back', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'crossed');
    const revoke = () => tenant.client.request('DELETE', '/v1/order-management/crossed/instructions/a/payment-link');
    expect((await revoke()).status).toBe(204);
    const revokedAt = () =>
      system.orm.em
        .fork()
        .getConnection()
        .execute<{ at: Date }[]>(
          `select r.revoked_at as at from payment_link_revocation r join payment_instruction i on i.id = r.instruction_id
            join payment_order o on o.id = i.order_id where o.tenant_id = ? and o.order_ref = 'crossed'`,
          [tenant.tenantId],
        )
        .then(([row]) => new Date(row.at).getTime());
    // Another host's revocation, a minute on, committed first (its clock stands in for it)…
    const later = (await revokedAt()) + 60_000;
    await system.orm.em
      .fork()
      .getConnection()
      .execute(`update payment_link_revocation set revoked_at = ? where tenant_id = ?`, [
        new Date(later),
        tenant.tenantId,
      ]);
    // …and this one, made before it, commits after.
    expect((await revoke()).status).toBe(204);
    expect(await revokedAt()).toBe(later);
  });

  it('is withdrawn by a revocation made on a host whose clock is behind the one that issued it', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'skewed');
    // Issued where the clock is 30 s ahead (this process's clock stands for that host's)…
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 30_000 });
    let url: string;
    try {
      url = (await link(tenant, 'skewed')).body.url;
    } finally {
      vi.useRealTimers();
    }
    expect((await page(url)).status).toBe(200);
    // …revoked where it is right: the link was issued before, and is withdrawn.
    const revoked = await tenant.client.request('DELETE', '/v1/order-management/skewed/instructions/a/payment-link');
    expect(revoked.status).toBe(204);
    expect((await page(url)).status).toBe(410);
  });

  it('to a payout lives 48 hours unless asked less, and never longer', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const install = await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_BANK/install', {
      body: { configuration: { apiKey: tenant.sandboxApiKey } },
    });
    expect(install.status).toBe(201);
    const scheme = await tenant.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'transfers',
        isDefault: true,
        rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_TRANSFER'], priority: 1 }] }],
      },
    });
    expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
    await order(tenant, 'payout', [instruction('a', { direction: 'CREDIT', financialInstrumentId: undefined })]);
    const asked = Date.now();
    const byDefault = await link(tenant, 'payout');
    expect(byDefault.status, JSON.stringify(byDefault.body)).toBe(201);
    const lifetime = Date.parse(byDefault.body.expiresAt) - asked;
    expect(lifetime).toBeGreaterThan(48 * 3600_000 - 60_000);
    expect(lifetime).toBeLessThanOrEqual(48 * 3600_000 + 60_000);
    expect((await link(tenant, 'payout', { expiresInSeconds: 3600 })).status).toBe(201);
    const tooLong = await link(tenant, 'payout', { expiresInSeconds: 7 * 24 * 3600 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors).toEqual([
      expect.objectContaining({ path: 'expiresInSeconds', code: 'too_long_for_payout' }),
    ]);
  });
});

describe('paying now', () => {
  it('takes a voucher only for a voucher option, and an instrument only for any other', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'pay-fields');
    const pay = (body: Record<string, unknown>) =>
      tenant.client.request('POST', '/v1/order-management/pay-fields/instructions/a/pay', { body });
    const card = await pay({ appId: 'SANDBOX_CARD', paymentMethod: 'CARD', voucherId: 'amazon-uk-25' });
    expect(card.status).toBe(400);
    expect(card.body.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'financialInstrumentId', code: 'required' }),
        expect.objectContaining({ path: 'voucherId', code: 'not_allowed' }),
      ]),
    );
    const voucher = await pay({
      appId: 'SANDBOX_VOUCHERS',
      paymentMethod: 'VOUCHER',
      voucherId: 'amazon-uk-25',
      financialInstrumentId: 'card_ok',
    });
    expect(voucher.status).toBe(400);
    expect(voucher.body.errors).toEqual([
      expect.objectContaining({ path: 'financialInstrumentId', code: 'not_allowed' }),
    ]);
  });
});

describe('the payment page', () => {
  it('answers a form it cannot read, an address that is no page, and too many requests, with a page and the right status', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'page-errors');
    const { url } = (await link(tenant, 'page-errors')).body;
    const fields = new URLSearchParams(Array.from({ length: 60 }, (_, i): [string, string] => [`field${i}`, 'x']));
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('This form could not be read');
    // An address under the link that is no page: a page too, which neither it nor the log repeats.
    const token = url.split('/pay/')[1];
    for (const [method, at] of [
      ['GET', `${url}/elsewhere`],
      ['POST', `${url}/return`],
    ]) {
      const stray = await fetch(at, { method, redirect: 'manual' });
      expect(stray.status, `${method} ${at}`).toBe(404);
      expect(stray.headers.get('content-type')).toMatch(/text\/html/);
      const html = await stray.text();
      expect(html).toContain('Page not found');
      expect(html).not.toContain(token);
    }

    const limited = await system.startApi({
      settings: { rateLimitPerMinute: 2, rateLimitNamespace: `page-${randomBytes(4).toString('hex')}` },
    });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await page(`${limited.url}/pay/${token}`));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
      expect(answers[2].type).toMatch(/text\/html/);
      expect(answers[2].html).toContain('Too many attempts');
    } finally {
      await limited.close();
    }
  });
});

describe('logs', () => {
  it('hold no secret of any test here, in any process: keys, app keys, link tokens', () => {
    expectNoSecretsInLogs(system);
  });
});
