import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentInstrument } from '../../db/entities/index.js';
import { issuePaymentLink, paymentLinkKeys } from '../../orders/payment-link-token.js';
import { launchBrowser, screenshotPath } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { chooseNewInstrument, post } from '../support/pay-page-client.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let system: TestSystem;
let browser: Browser | undefined;
let tenant: TenantFixture;
let schemeId: string;

beforeAll(async () => {
  system = await startSystem();
  browser = await launchBrowser();
  tenant = await system.newTenant({ tenant: { name: 'Acme Insurance', timeZone: 'Europe/Berlin' } });
  // Card or bank debit, as the customer likes.
  expect(
    (
      await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_BANK/install', {
        body: { configuration: { apiKey: tenant.sandboxApiKey } },
      })
    ).status,
  ).toBe(201);
  const scheme = await tenant.client.request('POST', '/v1/schemes/collect', {
    body: {
      name: 'card or bank',
      rules: [
        {
          options: [
            { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 },
            { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 2 },
          ],
        },
      ],
    },
  });
  expect(scheme.status).toBe(201);
  schemeId = scheme.body.schemeId;
  expect(
    (await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'erika', name: 'Erika Mustermann' } }))
      .status,
  ).toBe(201);
});

afterAll(async () => {
  await browser?.close();
  await system?.close();
});

/** The instruments entered on the provider's forms since `since`: whether each was saved, and its token. */
async function enteredSince(since: Date): Promise<[boolean, string | null][]> {
  const entered = await system.orm.em
    .fork()
    .find(PaymentInstrument, { tenantId: tenant.tenantId, createdAt: { $gte: since } });
  return entered.map((i) => [i.saved, i.tokenCiphertext]);
}

/** An order whose one instruction is open now and due in a week, with no instrument: the customer brings one. */
async function openInstruction(orderRef: string, amount = '1234.50', customerRef = 'erika') {
  const now = Date.now();
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      customerRef,
      instructions: [
        {
          instructionRef: 'premium',
          direction: 'DEBIT',
          amount,
          currency: 'EUR',
          country: 'DE',
          openDate: new Date(now - 1000).toISOString(),
          dueDate: new Date(now + 7 * 86_400_000).toISOString(),
          schemeId,
        },
      ],
    },
  });
  expect(res.status).toBe(202);
  await eventually(
    () => tenant.client.request('GET', `/v1/order-management/${orderRef}`),
    (r) => r.body.instructions?.[0]?.status === 'OPEN',
    { what: `${orderRef} open` },
  );
  const link = await tenant.client.request(
    'POST',
    `/v1/order-management/${orderRef}/instructions/premium/payment-link`,
    { body: {} },
  );
  expect(link.status).toBe(201);
  return link.body as { url: string; expiresAt: string };
}

async function newPage(options: { locale?: string; phone?: boolean } = {}): Promise<Page> {
  const context = await browser!.newContext({
    locale: options.locale ?? 'de-DE',
    viewport: options.phone ? { width: 375, height: 667 } : { width: 1024, height: 768 },
  });
  return context.newPage();
}

const statusOf = (page: Page) => page.locator('dd.status').getAttribute('data-status');

/** The status the page shows, and what it says beside it: a failure explains itself. */
async function shown(page: Page): Promise<{ status: string | null; alerts: string[] }> {
  return { status: await statusOf(page), alerts: await page.locator('[role=alert]').allInnerTexts() };
}

/** On the provider's own page (the sandbox's): the card, typed by keyboard as a customer would. */
async function enterCard(page: Page, number: string) {
  await page.getByLabel('Card number').waitFor({ timeout: 15_000 });
  expect(page.url().startsWith(`${system.sandbox.url}/hosted/`)).toBe(true);
  await page.getByLabel('Card number').focus();
  await page.keyboard.type(number);
  await page.keyboard.press('Tab');
  await page.keyboard.type('12/30');
  await page.keyboard.press('Tab');
  await page.keyboard.type('123');
  await page.keyboard.press('Tab');
  await page.keyboard.type('Erika Mustermann');
  await page.keyboard.press('Enter');
}

describe('the hosted payment page', () => {
  it('shows what is due in the customer’s language, and takes a card payment by keyboard on a phone-sized screen', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-card');
    const page = await newPage({ phone: true });
    const response = await page.goto(url);
    expect(response!.status()).toBe(200);
    const csp = response!.headers()['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    await expect(page.locator('.tenant').innerText()).resolves.toBe('Acme Insurance');
    await expect(page.locator('dd.amount').innerText()).resolves.toBe('1.234,50\u00a0€');
    await expect(statusOf(page)).resolves.toBe('OPEN');
    // Nothing of the tenant's set-up shows: no app, scheme or order reference.
    const text = await page.locator('body').innerText();
    for (const hidden of [schemeId, 'SANDBOX_CARD', 'page-card', tenant.tenantId]) expect(text).not.toContain(hidden);

    // No field for a card number here: a new card is typed on the provider's page, which the form may reach.
    expect(await page.locator('input[type=text]').count()).toBe(0);
    expect(csp).toContain(`form-action 'self' ${system.sandbox.url}`);
    await expect(page.getByLabel('A new card').isChecked()).resolves.toBe(true);
    await page.getByRole('button', { name: /^Pay/ }).focus();
    await page.keyboard.press('Enter');
    await page.getByLabel('Card number').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: screenshotPath('payment-page-provider-form'), fullPage: true });
    await enterCard(page, '4242 4242 4242 4242');
    // Back on our page, which shows the payment under way and refreshes itself until it is done.
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: screenshotPath('payment-page-card-paid'), fullPage: true });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-card' });
    expect(charges.map((c) => [c.amountMinor, c.status])).toEqual([['123450', 'SETTLED']]);
    expect(charges[0].instrument).toMatch(/^tok_/);

    // The link again, once paid: the outcome, no form.
    await page.goto(url);
    await expect(statusOf(page)).resolves.toBe('SETTLED');
    expect(await page.locator('form').count()).toBe(0);
    await page.context().close();
  });

  it('charges once when the form is submitted twice and from two tabs', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-double');
    const since = new Date();
    const first = await newPage();
    const second = await newPage();
    await first.goto(url);
    await second.goto(url);
    await Promise.all([first.locator('button[type=submit]').click(), second.locator('button[type=submit]').click()]);
    for (const page of [first, second]) {
      await page.getByLabel('Card number').waitFor({ timeout: 15_000 });
      await page.getByLabel('Card number').fill('4242 4242 4242 4242');
      await page.getByLabel('Expiry date (MM/YY)').fill('12/30');
      await page.getByLabel('Security code').fill('123');
    }
    // A double click on one provider form, and the other tab at the same time.
    await Promise.all([first.locator('button[type=submit]').dblclick(), second.locator('button[type=submit]').click()]);
    for (const page of [first, second]) {
      const reloaded = async () => {
        // The submits' own navigations may still be under way: one interrupted is tried again.
        try {
          await page.goto(url);
          return await statusOf(page);
        } catch {
          return undefined;
        }
      };
      await eventually(reloaded, (s) => s === 'SETTLED', {
        what: 'both tabs to show it paid',
        timeoutMs: 30_000,
        intervalMs: 500,
      });
    }
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-double' })).toHaveLength(1);
    // Each tab's card that came back to us, the one paid with and the one refused (or let go), is kept
    // nowhere. Opening the link again may cut short the other tab's return from the provider's form
    // (a double click leaves a submit on its way), and then its card never reaches us at all.
    const entered = await enteredSince(since);
    expect(entered.length).toBeGreaterThanOrEqual(1);
    expect(entered.length).toBeLessThanOrEqual(2);
    for (const card of entered) expect(card).toEqual([false, null]);
    await first.context().close();
    await second.context().close();
  });

  it('charges nothing when the amount changed while the customer was on the provider’s form, shows the new one, and keeps neither card', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-amended', '10.00');
    const since = new Date();
    const page = await newPage({ locale: 'en-GB' });
    await page.goto(url);
    await expect(page.locator('dd.amount').innerText()).resolves.toBe('€10.00');
    await page.getByRole('button', { name: 'Pay €10.00' }).click();
    await page.getByLabel('Card number').waitFor({ timeout: 15_000 });
    const amended = await tenant.client.request('PATCH', '/v1/order-management/page-amended/instructions/premium', {
      body: { amount: '1000.00' },
    });
    expect(amended.status, JSON.stringify(amended.body)).toBe(200);
    await eventually(
      () => tenant.client.request('GET', '/v1/order-management/page-amended'),
      (r) => r.body.instructions[0].amount === '1000.00',
      { what: 'the amendment in the read model' },
    );
    await enterCard(page, '4242 4242 4242 4242');
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    await expect(alert.innerText()).resolves.toMatch(/amount due has changed/);
    await expect(page.locator('dd.amount').innerText()).resolves.toBe('€1,000.00');
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-amended' })).toEqual([]);
    // Seen, the new amount is paid.
    await page.getByLabel('A new card').check();
    await page.getByRole('button', { name: 'Pay €1,000.00' }).click();
    await enterCard(page, '4242 4242 4242 4242');
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-amended' });
    expect(charges.map((c) => [c.amountMinor, c.status])).toEqual([['100000', 'SETTLED']]);
    // Neither card was saved: the one refused, and the one whose payment settled, are kept nowhere.
    expect(await enteredSince(since)).toEqual([
      [false, null],
      [false, null],
    ]);
    await page.context().close();
  });

  it('says clearly that a card was declined, and lets the customer pay with another', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-declined');
    const page = await newPage({ locale: 'en-GB' });
    await page.goto(url);
    await page.getByRole('button', { name: /^Pay/ }).click();
    await enterCard(page, '4000 0000 0000 0002');
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    await expect(alert.innerText()).resolves.toBe('Your bank declined the card.');
    await page.screenshot({ path: screenshotPath('payment-page-declined'), fullPage: true });
    await page.getByLabel('A new card').check();
    await page.getByRole('button', { name: /^Pay/ }).click();
    await enterCard(page, '4242 4242 4242 4242');
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-declined' });
    expect(charges.map((c) => c.status)).toEqual(['DECLINED', 'SETTLED']);
    await page.context().close();
  });

  it('follows a bank debit while it is pending, until the bank settles it', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-bank', '80.00');
    const page = await newPage({ locale: 'en-GB' });
    await page.goto(url);
    await expect(page.locator('dd.amount').innerText()).resolves.toBe('€80.00');
    await page.getByLabel('Bank debit', { exact: true }).check();
    await page.getByLabel('A new bank account').check();
    await page.locator('button[type=submit]').click();
    // The sandbox's bank holds this account's debits PENDING until it is told to settle them.
    await page.getByLabel('IBAN').fill('BE68 5390 0754 7034');
    await page.getByLabel('Account holder').fill('Erika Mustermann');
    await page.getByLabel(/I authorise/).check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('dd.status').waitFor({ timeout: 15_000 });
    await expect(shown(page)).resolves.toEqual({ status: 'PROCESSING', alerts: [] });
    await page.screenshot({ path: screenshotPath('payment-page-bank-pending'), fullPage: true });
    await system.sandbox.settleHeldDebit({ tenantId: tenant.tenantId, orderRef: 'page-bank' });
    // The page refreshes itself while the payment is pending.
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-bank' });
    expect(charges.map((c) => [c.appId, c.status])).toEqual([['SANDBOX_BANK', 'SETTLED']]);
    await page.context().close();
  });

  it('saves a card for next time when the customer asks, and offers it on their next link', async (test) => {
    if (!browser) return test.skip();
    // A customer of their own: what they save is offered on their links alone.
    expect(
      (await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'max', name: 'Max Mustermann' } }))
        .status,
    ).toBe(201);
    const first = await openInstruction('page-save', '20.00', 'max');
    const page = await newPage({ locale: 'en-GB', phone: true });
    await page.goto(first.url);
    await page.getByLabel('Save this card for next time').check();
    await page.getByRole('button', { name: /^Pay/ }).click();
    await enterCard(page, '5555 5555 5555 4444');
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });

    const second = await openInstruction('page-saved', '21.00', 'max');
    await page.goto(second.url);
    const saved = page.getByLabel('Mastercard •••• 4444, expires 12/30');
    await expect(saved.isChecked()).resolves.toBe(true);
    await page.screenshot({ path: screenshotPath('payment-page-saved-card'), fullPage: true });
    await page.getByRole('button', { name: /^Pay/ }).click();
    // Paid with the saved card at once: no provider form this time.
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    const [paidFirst] = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-save' });
    const [paidSecond] = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-saved' });
    expect(paidSecond.instrument).toBe(paidFirst.instrument);
    const instruments = (await tenant.client.request('GET', '/v1/customers/max/instruments')).body.items;
    expect(instruments.map((i: any) => i.display.last4)).toEqual(['4444']);
    await page.context().close();
  });

  it('lets the customer claim a payout as a voucher of the scheme’s groups, and shows its code', async (test) => {
    if (!browser) return test.skip();
    expect(
      (
        await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_VOUCHERS/install', {
          body: { configuration: { apiKey: tenant.sandboxApiKey } },
        })
      ).status,
    ).toBe(201);
    const group = (
      await tenant.client.request('POST', '/v1/voucher-groups', {
        body: { name: 'rewards', vouchers: [{ voucherId: 'amazon-de', enabled: true }] },
      })
    ).body;
    const payout = await tenant.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'vouchers',
        rules: [
          {
            voucherGroupIds: [group.voucherGroupId],
            options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
          },
        ],
      },
    });
    expect(payout.status).toBe(201);
    const now = Date.now();
    const order = await tenant.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'page-payout',
        instructions: [
          {
            instructionRef: 'premium',
            direction: 'CREDIT',
            amount: '15.00',
            currency: 'EUR',
            country: 'DE',
            openDate: new Date(now - 1000).toISOString(),
            dueDate: new Date(now + 7 * 86_400_000).toISOString(),
            schemeId: payout.body.schemeId,
          },
        ],
      },
    });
    expect(order.status).toBe(202);
    await eventually(
      () => tenant.client.request('GET', '/v1/order-management/page-payout'),
      (r) => r.body.instructions?.[0]?.status === 'OPEN',
      { what: 'payout open' },
    );
    const { url } = (
      await tenant.client.request('POST', '/v1/order-management/page-payout/instructions/premium/payment-link', {
        body: {},
      })
    ).body;
    const page = await newPage();
    await page.goto(url);
    await expect(page.locator('h1').innerText()).resolves.toBe('Payout for you');
    await page.getByLabel(/Amazon/).check();
    await page.getByRole('button', { name: 'Claim' }).click();
    await page.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    await expect(page.locator('.voucher-code').innerText()).resolves.toMatch(/^VCH-/);
    await page.screenshot({ path: screenshotPath('payment-page-voucher'), fullPage: true });
    const payouts = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-payout' });
    expect(payouts.map((p) => [p.appId, p.direction, p.amountMinor])).toEqual([['SANDBOX_VOUCHERS', 'CREDIT', '1500']]);
    await page.context().close();
  });

  it('shows a clear page for an expired, a forged and a mangled link, never an error dump', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-links');
    const token = url.split('/pay/')[1];
    const rows = await system.orm.em
      .fork()
      .getConnection()
      .execute<{ id: string }[]>(
        `select i.id from payment_instruction i join payment_order o on o.id = i.order_id where o.order_ref = 'page-links' and i.tenant_id = ?`,
        [tenant.tenantId],
      );
    const claims = {
      tenantId: tenant.tenantId,
      orderRef: 'page-links',
      instructionRef: 'premium',
      instructionId: rows[0].id,
    };
    const expired = await issuePaymentLink(
      paymentLinkKeys({ current: system.masterKey }),
      claims,
      new Date(Date.now() - 1000),
    );
    const forged = await issuePaymentLink(
      paymentLinkKeys({ current: Buffer.alloc(32, 7).toString('base64') }),
      claims,
      new Date(Date.now() + 60_000),
    );
    const base = url.split('/pay/')[0];
    const page = await newPage();
    for (const [link, status, heading] of [
      [`${base}/pay/${expired}`, 410, 'This link has expired'],
      [`${base}/pay/${forged}`, 404, 'This link is not valid'],
      [`${base}/pay/${token.slice(0, -4)}`, 404, 'This link is not valid'],
    ] as const) {
      const response = await page.goto(link);
      expect(response!.status()).toBe(status);
      await expect(page.locator('h1').innerText()).resolves.toBe(heading);
      expect(await page.locator('body').innerText()).not.toMatch(/error|stack|at \w+ \(/i);
    }
    await page.screenshot({ path: screenshotPath('payment-page-expired'), fullPage: true });
    await page.context().close();
  });

  it('asks again when the provider does not know the address the customer came back with, and shows a reload where its payment stands', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-return');
    const page = await newPage({ locale: 'en-GB' });
    // A mangled or stale return address: nothing was paid, and the form posts to the link again.
    const mangled = await page.goto(
      `${url}/return?o=SANDBOX_CARD%3ACARD&f=AAAAAAAAAAAAAAAA&a=123450&s=0&session=unknown&ref=unknown`,
    );
    expect(mangled!.status()).toBe(400);
    await expect(page.getByRole('alert').innerText()).resolves.toMatch(/did not go through/);
    const returns: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/return?')) returns.push(request.url());
    });
    await page.getByRole('button', { name: /^Pay/ }).click();
    await enterCard(page, '4000 0000 0000 0002');
    await page.getByRole('alert').waitFor({ timeout: 30_000 });
    await expect(page.getByRole('alert').innerText()).resolves.toBe('Your bank declined the card.');
    // Reloaded: the reference is spent, and the declined payment shows, not a wait for another.
    await page.goto(returns[0]);
    await expect(page.getByRole('alert').innerText()).resolves.toBe('Your bank declined the card.');
    await expect(page.getByRole('button', { name: /^Pay/ }).count()).resolves.toBe(1);
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-return' });
    expect(charges.map((c) => c.status)).toEqual(['DECLINED']);
    await page.context().close();
  });

  it('takes no card number a return address carries: nothing paid, logged or sent on', async () => {
    const { url } = await openInstruction('page-return-card', '42.00');
    const toProvider = await chooseNewInstrument(url, 'SANDBOX_CARD:CARD');
    expect(toProvider.status).toBe(303);
    const back = await post(toProvider.headers.get('location')!, {
      number: '4242 4242 4242 4242',
      expiry: '12/30',
      cvc: '123',
      name: 'Erika Mustermann',
    });
    expect(back.status).toBe(303);
    // The return address tampered with: the amount shown, replaced by a card number.
    const card = '4111111111111111';
    const tampered = new URL(back.headers.get('location')!);
    tampered.searchParams.set('a', card);
    const returned = await fetch(tampered, { redirect: 'manual' });
    expect(returned.status).toBe(400);
    expect(await returned.text()).toContain('did not go through');
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-return-card' })).toEqual([]);
    // Nor sent on to the provider as the session or the reference to exchange.
    for (const field of ['session', 'ref']) {
      const carrying = new URL(back.headers.get('location')!);
      carrying.searchParams.set(field, card);
      const refused = await fetch(carrying, { redirect: 'manual' });
      expect(refused.status).toBe(400);
    }
    // Nor the bank account typed on the provider's form earlier in this file, in either form.
    expectNoSecretsInLogs(system, [card, 'BE68 5390 0754 7034', 'BE68539007547034']);
  });

  it('refuses a form posted without its CSRF token', async () => {
    const { url } = await openInstruction('page-csrf');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'option=SANDBOX_CARD%3ACARD&instrument%3ASANDBOX_CARD%3ACARD=card_ok&form=AAAAAAAAAAAAAAAA',
    });
    expect(res.status).toBe(403);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-csrf' })).toHaveLength(0);
  });

  it('keeps a form open in one tab payable after the link is opened again from the customer’s email', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-other-tab');
    const context = await browser.newContext({ locale: 'en-GB' });
    // The link as it arrives, in a webmail on a site of its own: each click is a cross-site navigation.
    await context.route('https://mail.example/', (route) =>
      route.fulfill({ contentType: 'text/html', body: `<a href="${url}">Pay your premium</a>` }),
    );
    const fromMail = async () => {
      const tab = await context.newPage();
      await tab.goto('https://mail.example/');
      await Promise.all([tab.waitForURL(url), tab.getByRole('link', { name: 'Pay your premium' }).click()]);
      await tab.getByRole('button', { name: /^Pay/ }).waitFor();
      return tab;
    };
    const first = await fromMail();
    await fromMail();
    // The first tab's form was issued before the second click; it still takes the customer on.
    const [submitted] = await Promise.all([
      first.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      first.getByRole('button', { name: /^Pay/ }).click(),
    ]);
    expect(submitted.status(), 'not "This form has expired"').toBe(303);
    await enterCard(first, '4242 4242 4242 4242');
    await first.locator('dd.status[data-status=SETTLED]').waitFor({ timeout: 30_000 });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-other-tab' });
    expect(charges.map((c) => c.status)).toEqual(['SETTLED']);
    await context.close();
  });
  it('refuses a form another site posts, even one carrying a token the customer’s page was given', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-cross-site');
    const page = await newPage({ locale: 'en-GB' });
    await page.goto(url);
    const fields: [string | null, string | null][] = [];
    for (const input of await page.locator('form input[type=hidden]').all()) {
      fields.push([await input.getAttribute('name'), await input.getAttribute('value')]);
    }
    expect(fields.map(([name]) => name)).toContain('csrf');
    // The customer's browser holds the cookie the token is bound to.
    const cookies = await page.context().cookies();
    expect(cookies.map((c) => [c.name, c.sameSite])).toEqual([['pay_csrf', 'Lax']]);
    // The same form, token and all, posted from another site in the customer's browser: the
    // cookie the token is bound to does not go with it.
    const hidden = fields.map(([name, value]) => `<input type="hidden" name="${name}" value="${value}">`).join('');
    await page.route('https://attacker.example/', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<form method="post" action="${url}">${hidden}<input type="hidden" name="option" value="SANDBOX_CARD:CARD"><input type="hidden" name="instrument:SANDBOX_CARD:CARD" value="new"><button>Go</button></form>`,
      }),
    );
    await page.goto('https://attacker.example/');
    const [answer] = await Promise.all([page.waitForResponse(url), page.getByRole('button', { name: 'Go' }).click()]);
    expect(answer.status()).toBe(403);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-cross-site' })).toHaveLength(0);
    await page.context().close();
  });

  it('has no serious or critical accessibility violation (axe-core)', async (test) => {
    if (!browser) return test.skip();
    const { url } = await openInstruction('page-a11y');
    const page = await newPage();
    await page.goto(url);
    // Evaluated through the browser's debugging protocol, which the page's CSP does not govern.
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      (
        globalThis as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string }[] }> } }
      ).axe.run(),
    );
    expect(result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual(
      [],
    );
    // And the provider's form the customer is sent to, on a phone-sized screen.
    const phone = await newPage({ phone: true });
    await phone.goto(url);
    await phone.getByLabel('A new card').check();
    await phone.getByRole('button', { name: /^Pay/ }).click();
    await phone.getByLabel('Card number').waitFor({ timeout: 15_000 });
    await phone.evaluate(axeSource);
    const provider = await phone.evaluate(() =>
      (
        globalThis as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string }[] }> } }
      ).axe.run(),
    );
    expect(
      provider.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id),
    ).toEqual([]);
    await page.context().close();
    await phone.context().close();
  });
});
