import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signSandboxCallback } from '../../apps/sandbox/callback-signature.js';
import {
  AppInstallation,
  PaymentInstruction,
  PaymentInstrument,
  PaymentOrder,
  ProviderCallback,
  SchemeVersion,
} from '../../db/entities/index.js';
import { eventually } from '../support/eventually.js';
import { holdRow, holdTransaction } from '../support/row-hold.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { bankDebitPaidNow } from '../support/bank-debits.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';
import { InstrumentStore } from '../../customers/instrument-store.js';
import { SecretBox } from '../../db/secret-box.js';
import { createLogger } from '../../logger.js';
import { ProviderResults } from '../../orders/provider-results.js';
import { MAX_SCHEMES_PER_KIND } from '../../api/schemes/routes.js';

let system: TestSystem;

beforeAll(async () => {
  // Short provider timeouts, so a call the sandbox holds (card_timeout) is given up and retried quickly.
  system = await startSystem({ sandboxTimeoutMs: 1500 });
});
afterAll(async () => {
  await system?.close();
});

const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

function instruction(ref: string, overrides: Record<string, unknown> = {}) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '20.00',
    currency: 'EUR',
    country: 'FR',
    openDate: soon(0),
    dueDate: soon(1),
    financialInstrumentId: 'card_ok',
    ...overrides,
  };
}

/**
 * The sandbox's callback of a 20.00 EUR card payment of instruction `a` charged back (or as `result`
 * says), signed with `key` and naming the tenant as `tenantId` says, posted to the API.
 */
function cardChargedBack(
  tenantId: string,
  orderRef: string,
  providerRef: string,
  key: string,
  result: Record<string, string> = { status: 'CHARGED_BACK', returnCode: 'fraudulent', returnedAmountMinor: '2000' },
) {
  const body = JSON.stringify({
    id: providerRef,
    appId: 'SANDBOX_CARD',
    ...result,
    amountMinor: '2000',
    currency: 'EUR',
    reference: { tenantId, orderRef, instructionRef: 'a' },
  });
  return fetch(`${system.api.url}/v1/providers/SANDBOX_CARD/callbacks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'sandbox-signature': signSandboxCallback(key, body) },
    body,
  });
}

async function install(
  tenant: TenantFixture,
  appId: string,
  configuration: Record<string, unknown> = { apiKey: tenant.sandboxApiKey },
) {
  const res = await tenant.client.request('POST', `/v1/marketplace/apps/${appId}/install`, { body: { configuration } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function createScheme(
  tenant: TenantFixture,
  kind: 'collect' | 'payout',
  rules: unknown[],
  extra: Record<string, unknown> = {},
) {
  const res = await tenant.client.request('POST', `/v1/schemes/${kind}`, {
    body: { name: `${kind} scheme`, rules, ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** A rule offering cards through the sandbox, for schemes whose rules do not matter. */
const cardRules = [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }];

async function order(tenant: TenantFixture, orderRef: string, instructions: unknown[]) {
  return tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
}

function waitForInstruction(
  tenant: TenantFixture,
  orderRef: string,
  done: (i: any) => boolean,
  what: string,
  timeoutMs = 45_000,
) {
  return eventually(
    async () => (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body?.instructions?.[0],
    (i) => i !== undefined && done(i),
    {
      what,
      timeoutMs,
    },
  );
}

describe('the marketplace catalog', () => {
  it('lists every app with what it does and the schema of its configuration, secrets marked writeOnly', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const apps = (await tenant.client.request('GET', '/v1/marketplace/apps')).body.items;
    expect(apps.map((a: any) => a.appId)).toEqual([
      'SANDBOX_CARD',
      'SANDBOX_BANK',
      'SANDBOX_VOUCHERS',
      'HTTP_CONNECTOR',
    ]);
    const bank = (await tenant.client.request('GET', '/v1/marketplace/apps/SANDBOX_BANK')).body;
    expect(bank).toMatchObject({ directions: ['collect', 'payout'], paymentMethods: ['BANK_DEBIT', 'BANK_TRANSFER'] });
    expect(bank.configurationSchema.properties.apiKey.writeOnly).toBe(true);
    expect((await tenant.client.request('GET', '/v1/marketplace/apps/NO_SUCH_APP')).status).toBe(404);
  });
});

describe('installing apps', () => {
  it('checks the configuration against the app’s schema, naming the field at fault', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const bad = await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
      body: { configuration: { apiKey: 'not-a-key', surprise: 1 } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: any) => [e.path, e.code])).toEqual(
      expect.arrayContaining([
        ['configuration.apiKey', 'invalid_format'],
        ['configuration.surprise', 'unknown_field'],
      ]),
    );
    const http = await tenant.client.request('POST', '/v1/marketplace/apps/HTTP_CONNECTOR/install', {
      body: {
        configuration: { url: 'http://10.0.0.7/pay', signingSecret: `whsec_${randomBytes(32).toString('base64')}` },
      },
    });
    expect(http).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'configuration.url', code: 'url_not_allowed' }] },
    });
    // A name is looked up when configured, as at connect time: one resolving to no address we call is refused.
    const unresolved = await tenant.client.request('POST', '/v1/marketplace/apps/HTTP_CONNECTOR/install', {
      body: {
        configuration: {
          url: 'https://provider.invalid/pay',
          signingSecret: `whsec_${randomBytes(32).toString('base64')}`,
        },
      },
    });
    expect(unresolved).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'configuration.url', code: 'url_not_allowed' }] },
    });
    expect((await tenant.client.request('GET', '/v1/marketplace/installed')).body.items).toEqual([]);
  });

  it('audits a provider’s URL as its origin and digest: its path may hold a token for it', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const since = new Date().toISOString();
    const first = 'http://127.0.0.1:9/acct/first-token/pay';
    const second = 'http://127.0.0.1:9/acct/second-token';
    // Not a query or fragment: the provider's paths are added after it.
    for (const url of [`${first}?key=q-token`, `${first}#s-token`]) {
      const refused = await tenant.client.request('POST', '/v1/marketplace/apps/HTTP_CONNECTOR/install', {
        body: { configuration: { url, signingSecret: `whsec_${randomBytes(32).toString('base64')}` } },
      });
      expect(refused).toMatchObject({
        status: 400,
        body: { errors: [{ path: 'configuration.url', code: 'url_has_query' }] },
      });
    }
    await install(tenant, 'HTTP_CONNECTOR', {
      url: first,
      signingSecret: `whsec_${randomBytes(32).toString('base64')}`,
    });
    const moved = await tenant.client.request('PUT', '/v1/marketplace/installed/HTTP_CONNECTOR/configuration', {
      body: { configuration: { url: second, timeoutMs: 2000 } },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    // Its secret left out (kept), a URL whose host does not resolve is refused as at install.
    const unresolved = await tenant.client.request('PUT', '/v1/marketplace/installed/HTTP_CONNECTOR/configuration', {
      body: { configuration: { url: 'https://provider.invalid/pay' } },
    });
    expect(unresolved).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'configuration.url', code: 'url_not_allowed' }] },
    });
    const audit = await tenant.account.request('GET', `/v1/account/audit?since=${encodeURIComponent(since)}`);
    const entries = audit.body.items.filter((e: { targetId: string }) => e.targetId === 'HTTP_CONNECTOR');
    const configured = (action: string) =>
      entries.find((e: { action: string }) => e.action === action)?.details.configuration;
    const digest = (url: string) => createHash('sha256').update(url).digest('hex');
    expect(configured('app.install')).toEqual({ url: { origin: 'http://127.0.0.1:9', sha256: digest(first) } });
    expect(configured('app.configure')).toEqual({
      url: { origin: 'http://127.0.0.1:9', sha256: digest(second) },
      timeoutMs: 2000,
    });
    const kept = JSON.stringify(entries);
    for (const token of ['first-token', 'q-token', 'second-token', 's-token']) expect(kept).not.toContain(token);
  });

  it('keeps secrets sealed and never answers them; a configuration change keeps a secret left out', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const apiKey = newSandboxApiKey();
    const installed = await install(tenant, 'SANDBOX_CARD', { apiKey, statementDescriptor: 'ACME' });
    expect(installed).toMatchObject({
      appId: 'SANDBOX_CARD',
      configuration: { statementDescriptor: 'ACME' },
      secretsSet: ['apiKey'],
    });
    expect(JSON.stringify(installed)).not.toContain(apiKey);
    const row = await system.orm.em
      .fork()
      .findOneOrFail(AppInstallation, { tenantId: tenant.tenantId, appId: 'SANDBOX_CARD' });
    expect(row.secretsCiphertext).toMatch(/^v2\./);
    expect(JSON.stringify(row)).not.toContain(apiKey);

    expect(
      (
        await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
          body: { configuration: { apiKey } },
        })
      ).status,
    ).toBe(409);
    const changed = await tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_CARD/configuration', {
      body: { configuration: { statementDescriptor: 'ACME LTD' } },
    });
    expect(changed.body).toMatchObject({ configuration: { statementDescriptor: 'ACME LTD' }, secretsSet: ['apiKey'] });
    // The kept key still pays.
    await createScheme(
      tenant,
      'collect',
      [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
      { isDefault: true },
    );
    expect((await order(tenant, 'kept-key', [instruction('a')])).status).toBe(202);
    await waitForInstruction(tenant, 'kept-key', (i) => i.status === 'SETTLED', 'payment with the kept key');
    expect(JSON.stringify(await system.sandbox.ledger({ tenantId: tenant.tenantId }))).not.toContain(apiKey);
    system.issuedSecrets.push(apiKey);
  });

  it('refuses to uninstall an app a scheme offers or a live instruction pays through, and uninstalls it after', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD, offered by the default scheme
    const inUse = await tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_CARD/uninstall');
    expect(inUse).toMatchObject({ status: 409, body: { code: 'app_in_use', errors: [{ code: 'scheme_uses_app' }] } });

    expect(
      (await order(tenant, 'live-1', [instruction('a', { openDate: '2031-01-01', dueDate: '2031-01-02' })])).status,
    ).toBe(202);
    const [scheme] = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
    await install(tenant, 'SANDBOX_BANK');
    // The scheme stops offering cards; the instruction still pays through them.
    const edited = await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
      body: {
        name: 'bank only',
        isDefault: true,
        rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
      },
    });
    expect(edited.body.version).toBe(2);
    const stillLive = await tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_CARD/uninstall');
    expect(stillLive).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
    expect(stillLive.body.detail).toMatch(/1 instruction/);

    expect((await tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_VOUCHERS/uninstall')).status).toBe(
      404,
    );
    await install(tenant, 'SANDBOX_VOUCHERS');
    expect((await tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_VOUCHERS/uninstall')).status).toBe(
      204,
    );
    expect((await tenant.client.request('GET', '/v1/marketplace/installed/SANDBOX_VOUCHERS')).status).toBe(404);
    expect(
      await system.orm.em.fork().count(AppInstallation, { tenantId: tenant.tenantId, appId: 'SANDBOX_VOUCHERS' }),
    ).toBe(0);
  });

  it('refuses to uninstall an app while a collection through it may still be refunded or taken back, and uninstalls it once its order has closed', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD, offered by the default scheme
    expect((await order(tenant, 'paid-1', [instruction('a')])).status).toBe(202);
    await waitForInstruction(tenant, 'paid-1', (i) => i.status === 'SETTLED', 'the card payment settled');
    // Ended, and open for the card's reversal window (120 days): a chargeback's callback is checked with the app's key.
    const ended = await eventually(
      () => system.orm.em.fork().findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef: 'paid-1' }),
      (o) => o.status !== 'ACTIVE' && o.openUntil != null,
      { what: 'the order ended, open for returns' },
    );
    expect(ended.openUntil!.getTime()).toBeGreaterThan(Date.now() + 100 * 24 * 3600_000);
    await install(tenant, 'SANDBOX_BANK');
    const [scheme] = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
    const edited = await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
      body: {
        name: 'bank only',
        isDefault: true,
        rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
      },
    });
    expect(edited.status).toBe(200);
    const uninstall = () => tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_CARD/uninstall');
    const stillOpen = await uninstall();
    expect(stillOpen).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
    expect(stillOpen.body.detail).toMatch(/0 instruction\(s\) not yet final, 1 payment\(s\) in orders still open/);
    // However old the payment, a refund of it goes through the app while its order is open.
    await system.orm.em
      .fork()
      .nativeUpdate(
        PaymentInstruction,
        { tenantId: tenant.tenantId, instructionRef: 'a', order: ended.id },
        { settledAt: new Date(Date.now() - 121 * 24 * 3600_000) },
      );
    expect((await uninstall()).status).toBe(409);
    // A day after its order closed (its windows over: here, its open_until moved back), the app goes.
    await system.orm.em
      .fork()
      .nativeUpdate(PaymentOrder, { id: ended.id }, { openUntil: new Date(Date.now() - 23 * 3600_000) });
    expect((await uninstall()).status).toBe(409);
    await system.orm.em
      .fork()
      .nativeUpdate(PaymentOrder, { id: ended.id }, { openUntil: new Date(Date.now() - 25 * 3600_000) });
    expect((await uninstall()).status).toBe(204);
  });

  it('refuses to uninstall an app while a payment that failed through it may be retried, but not once its order was cancelled', async () => {
    /** A tenant whose default scheme pays by bank debit only, and an order whose card payment failed at once. */
    const failedThroughCards = async (instructions: unknown[]) => {
      const tenant = await system.newTenant();
      expect((await order(tenant, 'declined', instructions)).status).toBe(202);
      await waitForInstruction(tenant, 'declined', (i) => i.status === 'FAILED', 'the card payment failed');
      await install(tenant, 'SANDBOX_BANK');
      const [scheme] = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
      const edited = await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
        body: {
          name: 'bank only',
          rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
        },
      });
      expect(edited.status).toBe(200);
      return tenant;
    };
    const uninstall = (tenant: TenantFixture) =>
      tenant.client.request('POST', '/v1/marketplace/installed/SANDBOX_CARD/uninstall');

    // Ended with a failure: a retry of it goes through the card app.
    const retriable = await failedThroughCards([instruction('a', { financialInstrumentId: 'card_declined' })]);
    const refused = await uninstall(retriable);
    expect(refused).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
    expect(refused.body.detail).toMatch(/0 instruction\(s\) not yet final, 1 payment\(s\) in orders still open/);

    // Cancelled (its other instruction was still to come): nothing of it is retried.
    const cancelled = await failedThroughCards([
      instruction('a', { financialInstrumentId: 'card_declined' }),
      instruction('b', { openDate: '2031-01-01', dueDate: '2031-01-02' }),
    ]);
    const cancel = await cancelled.client.request('POST', '/v1/order-management/declined/cancel');
    expect(cancel.body.status, JSON.stringify(cancel.body)).toBe('CANCELLED');
    // Still open, as it would be with a collection through another app to refund: its failure is not counted.
    await eventually(
      () =>
        system.orm.em
          .fork()
          .nativeUpdate(
            PaymentOrder,
            { tenantId: cancelled.tenantId, orderRef: 'declined', status: 'CANCELLED' },
            { openUntil: new Date(Date.now() + 10 * 24 * 3600_000) },
          ),
      (updated) => updated === 1,
      { what: 'the order stored as cancelled' },
    );
    expect((await uninstall(cancelled)).status).toBe(204);
  });
});

describe('schemes', () => {
  it('are at most 50 of a kind per tenant: the next is a 409 until one is deleted', async () => {
    const tenant = await system.newTenant(); // its default collection scheme is the first
    const rules = [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }];
    const create = (n: number) =>
      tenant.client.request('POST', '/v1/schemes/collect', { body: { name: `scheme ${n}`, rules } });
    // Created two at a time: the count is taken under the tenant's lock.
    for (let n = 1; n < MAX_SCHEMES_PER_KIND; n += 2) {
      const made = await Promise.all([n, n + 1].filter((m) => m < MAX_SCHEMES_PER_KIND).map(create));
      expect(made.map((r) => r.status)).toEqual(made.map(() => 201));
    }
    const over = await Promise.all([create(98), create(99)]);
    expect(over.map((r) => [r.status, r.body.code])).toEqual([
      [409, 'too_many_schemes'],
      [409, 'too_many_schemes'],
    ]);
    // A deleted scheme frees its place.
    const [one] = (await tenant.client.request('GET', '/v1/schemes/collect?limit=1')).body.items;
    expect((await tenant.client.request('DELETE', `/v1/schemes/collect/${one.schemeId}`)).status).toBe(204);
    expect((await create(101)).status).toBe(201);
  });

  it('offer only installed apps, in the directions and methods they have', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_CARD');
    const res = await tenant.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'wrong',
        rules: [
          {
            options: [
              { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 },
              { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_TRANSFER'], priority: 2 },
            ],
          },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: any) => [e.path, e.code])).toEqual([
      ['rules[0].options[0].appId', 'app_wrong_direction'],
      ['rules[0].options[1].appId', 'app_not_installed'],
    ]);
    const method = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'wrong',
        rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
      },
    });
    expect(method).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'rules[0].options[0].paymentMethods[0]', code: 'method_not_offered' }] },
    });
    expect((await tenant.client.request('GET', '/v1/schemes/collect')).body.items).toEqual([]);
  });

  it('refuse a malformed amount bound as the field at fault, beside a well-formed one, and an inverted range', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_CARD');
    const option = { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 };
    const refused = async (bounds: Record<string, unknown>) => {
      const res = await tenant.client.request('POST', '/v1/schemes/payout', {
        body: { name: 'bounds', rules: [{ currencies: ['EUR'], ...bounds, options: [option] }] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      return res.body.errors.map((e: any) => [e.path, e.code]);
    };
    // Found by the fuzzer: the range check compared a bound that had failed its own pattern (a 500).
    expect(await refused({ minAmount: 'ten', maxAmount: '100.00' })).toEqual([
      ['rules[0].minAmount', 'invalid_format'],
    ]);
    expect(await refused({ minAmount: '1.00', maxAmount: '1e3' })).toEqual([['rules[0].maxAmount', 'invalid_format']]);
    expect(await refused({ minAmount: '100.00', maxAmount: '99.999' })).toEqual([
      ['rules[0].maxAmount', 'range_inverted'],
    ]);
    // The same number is ten euros or a thousand yen: a bound is refused without its currencies.
    expect(await refused({ currencies: [], maxAmount: '1000' })).toEqual([
      ['rules[0].currencies', 'bounds_need_currencies'],
    ]);
    expect((await tenant.client.request('GET', '/v1/schemes/payout')).body.items).toEqual([]);
  });

  it('offer an app only in the currencies and countries it pays in (the catalog’s)', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_CARD');
    await install(tenant, 'SANDBOX_BANK'); // EEA and UK; EUR, GBP, SEK, NOK, DKK, PLN
    const bank = { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 };
    // A rule naming only currencies, or only countries, the app does not pay in: refused when published.
    const refused = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'dead options',
        rules: [
          { currencies: ['JPY', 'USD'], options: [bank] },
          { countries: ['US'], options: [bank] },
        ],
      },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.errors.map((e: any) => [e.path, e.code])).toEqual([
      ['rules[0].options[0].appId', 'app_wrong_currency'],
      ['rules[1].options[0].appId', 'app_wrong_country'],
    ]);
    // A rule for any currency and country offers it where it pays, and the card elsewhere.
    const scheme = await createScheme(tenant, 'collect', [
      { options: [bank, { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 2 }] },
    ]);
    const options = async (currency: string, country: string) =>
      (
        await tenant.client.request(
          'GET',
          `/v1/schemes/collect/${scheme.schemeId}/options?amount=10.00&currency=${currency}&country=${country}`,
        )
      ).body.options.map((o: any) => o.appId);
    expect(await options('EUR', 'FR')).toEqual(['SANDBOX_BANK', 'SANDBOX_CARD']);
    expect(await options('USD', 'FR')).toEqual(['SANDBOX_CARD']);
    expect(await options('EUR', 'US')).toEqual(['SANDBOX_CARD']);
  });

  it('evaluate end to end: the first matching rule, inclusive bounds, the lowest priority per method', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_CARD');
    await install(tenant, 'SANDBOX_BANK');
    const scheme = await createScheme(tenant, 'collect', [
      {
        currencies: ['EUR'],
        countries: ['FR', 'DE'],
        minAmount: '10.00',
        maxAmount: '100.00',
        options: [
          { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 2 },
          { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 },
        ],
      },
      {
        currencies: ['GBP'],
        countries: [],
        options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }],
      },
    ]);
    const options = async (amount: string, currency = 'EUR', country = 'FR') => {
      const res = await tenant.client.request(
        'GET',
        `/v1/schemes/collect/${scheme.schemeId}/options?amount=${amount}&currency=${currency}&country=${country}`,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.options.map((o: any) => `${o.paymentMethod}:${o.appId}`);
    };
    expect(await options('9.99')).toEqual([]);
    expect(await options('10.00')).toEqual(['CARD:SANDBOX_CARD', 'BANK_DEBIT:SANDBOX_BANK']);
    expect(await options('100')).toEqual(['CARD:SANDBOX_CARD', 'BANK_DEBIT:SANDBOX_BANK']);
    expect(await options('100.01')).toEqual([]);
    expect(await options('50.00', 'EUR', 'IT')).toEqual([]);
    expect(await options('1.00', 'GBP', 'GB')).toEqual(['CARD:SANDBOX_CARD']);
    const precision = await tenant.client.request(
      'GET',
      `/v1/schemes/collect/${scheme.schemeId}/options?amount=10.001&currency=EUR&country=FR`,
    );
    expect(precision).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'query.amount', code: 'invalid_amount_precision' }] },
    });
  });

  it('publish a version per edit; an instruction keeps the version it was resolved with', async () => {
    const tenant = await system.newTenant();
    const [scheme] = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
    expect(scheme).toMatchObject({ version: 1, isDefault: true });
    const first = await order(tenant, 'v-1', [instruction('a', { openDate: '2031-01-01', dueDate: '2031-01-02' })]);
    expect(first.body.instructions[0]).toMatchObject({
      schemeId: scheme.schemeId,
      schemeVersion: 1,
      appId: 'SANDBOX_CARD',
      paymentMethod: 'CARD',
    });
    // An edit that leaves `isDefault` out leaves the scheme the default.
    const edited = await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
      body: {
        name: 'cards, up to 50',
        rules: [
          {
            currencies: ['EUR'],
            maxAmount: '50.00',
            options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }],
          },
        ],
      },
    });
    expect(edited.body).toMatchObject({ version: 2, name: 'cards, up to 50', isDefault: true });
    const second = await order(tenant, 'v-2', [instruction('a', { openDate: '2031-01-01', dueDate: '2031-01-02' })]);
    expect(second.body.instructions[0].schemeVersion).toBe(2);
    expect((await tenant.client.request('GET', '/v1/order-management/v-1')).body.instructions[0].schemeVersion).toBe(1);
    // Version 2 offers nothing above 50.00: the instruction is refused, naming it.
    const tooMuch = await order(tenant, 'v-3', [instruction('a'), instruction('b', { amount: '75.00' })]);
    expect(tooMuch).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'instructions[1]', code: 'no_payment_option' }] },
    });
    const deleteLive = await tenant.client.request('DELETE', `/v1/schemes/collect/${scheme.schemeId}`);
    expect(deleteLive).toMatchObject({ status: 409, body: { code: 'scheme_in_use' } });
    // Said false, it is no longer the default.
    const undefaulted = await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
      body: {
        name: 'not the default',
        isDefault: false,
        rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
      },
    });
    expect(undefaulted.body).toMatchObject({ version: 3, isDefault: false });
  });

  // A row held by another session: an embedded PGlite serves one session at a time, so none waits there.
  it.skipIf(inject('databasePoolSize') === 1)(
    'edits a scheme only after a delete of it under way has ended: an edit racing the delete is a 404, not a 200 for a scheme gone',
    async () => {
      const tenant = await system.newTenant();
      const { schemeId } = await createScheme(tenant, 'collect', cardRules, { name: 'to delete' });
      // Made without `isDefault`: not the default, and the tenant's default stays where it was.
      const listed = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
      expect(
        listed.map((one: { schemeId: string; isDefault: boolean }) => [one.schemeId === schemeId, one.isDefault]),
      ).toEqual(
        expect.arrayContaining([
          [true, false],
          [false, true],
        ]),
      );
      // A delete of it, under way in another transaction: the edit comes while it holds the row.
      const deleting = await holdTransaction();
      try {
        await deleting.query('select id from scheme where id = $1 for update', [schemeId]);
        await deleting.query('update scheme set deleted_at = now() where id = $1', [schemeId]);
        const edit = tenant.client.request('PUT', `/v1/schemes/collect/${schemeId}`, {
          body: {
            name: 'edited meanwhile',
            rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 2 }] }],
          },
        });
        await eventually(
          () => deleting.waiting('%scheme%'),
          (n) => n === 1,
          { what: 'the edit waiting on the scheme' },
        );
        await deleting.commit();
        expect(await edit).toMatchObject({ status: 404, body: { code: 'scheme_not_found' } });
      } finally {
        await deleting.release();
      }
      const versions = await system.orm.em.fork().count(SchemeVersion, { schemeId });
      expect(versions, 'the edit published no version of the deleted scheme').toBe(1);
    },
  );

  it.skipIf(inject('databasePoolSize') === 1)(
    'deletes a scheme once: two deletes at once are one 204 and one 404',
    async () => {
      const tenant = await system.newTenant();
      const { schemeId } = await createScheme(tenant, 'collect', cardRules, { name: 'deleted twice' });
      // Both wait on the row, then go one after the other: the second sees it deleted.
      const held = await holdRow('scheme', 'id = $1', [schemeId]);
      try {
        const deletes = [0, 1].map(() => tenant.client.request('DELETE', `/v1/schemes/collect/${schemeId}`));
        await eventually(
          () => held.waiting('%scheme%'),
          (n) => n === 2,
          { what: 'both deletes waiting on the scheme' },
        );
        await held.release();
        expect((await Promise.all(deletes)).map((r) => r.status).sort()).toEqual([204, 404]);
      } finally {
        await held.release();
      }
    },
  );

  it('choose for an order: the scheme named, else the default; of the right kind, with the method asked for', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const none = await order(tenant, 'no-scheme', [instruction('a')]);
    expect(none).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'instructions[0].schemeId', code: 'scheme_required' }] },
    });
    await install(tenant, 'SANDBOX_CARD');
    await install(tenant, 'SANDBOX_BANK');
    const payout = await createScheme(tenant, 'payout', [
      { options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_TRANSFER'], priority: 1 }] },
    ]);
    const collect = await createScheme(tenant, 'collect', [
      { options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] },
    ]);
    const res = await order(tenant, 'choices', [
      instruction('wrong-kind', { schemeId: payout.schemeId }),
      instruction('not-offered', { schemeId: collect.schemeId, paymentMethod: 'BANK_DEBIT' }),
      instruction('unknown', { schemeId: '00000000-0000-4000-8000-000000000000' }),
    ]);
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: any) => [e.path, e.code])).toEqual([
      ['instructions[0].schemeId', 'scheme_wrong_kind'],
      ['instructions[1].paymentMethod', 'method_not_offered'],
      ['instructions[2].schemeId', 'scheme_not_found'],
    ]);
    const ok = await order(tenant, 'named', [
      instruction('a', { schemeId: collect.schemeId, openDate: '2031-01-01', dueDate: '2031-01-02' }),
    ]);
    expect(ok.body.instructions[0]).toMatchObject({
      schemeId: collect.schemeId,
      appId: 'SANDBOX_CARD',
      paymentMethod: 'CARD',
    });
  });
});

describe('vouchers', () => {
  it('searches the catalog by brand, country, currency and amount', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const search = async (query: string) =>
      (await tenant.client.request('GET', `/v1/catalog/vouchers?${query}`)).body.items.map((v: any) => v.voucherId);
    const all = await search('');
    expect(all.length).toBeGreaterThanOrEqual(8);
    expect(await search('brand=apple')).toEqual(expect.arrayContaining(['apple-us', 'apple-uk']));
    expect((await search('country=DE')).every((id: string) => all.includes(id))).toBe(true);
    // apple-uk comes in 10, 25, 50 and 100 pounds only.
    expect(await search('brand=Apple&currency=GBP&amount=25.00')).toEqual(['apple-uk']);
    expect(await search('brand=Apple&currency=GBP&amount=30.00')).toEqual([]);
    const missingCurrency = await tenant.client.request('GET', '/v1/catalog/vouchers?amount=25.00');
    expect(missingCurrency).toMatchObject({ status: 400, body: { errors: [{ path: 'query.currency' }] } });
  });

  it('keeps groups of catalog vouchers, and refuses to delete one a payout scheme draws on', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    const unknown = await tenant.client.request('POST', '/v1/voucher-groups', {
      body: { name: 'x', vouchers: [{ voucherId: 'no-such-voucher', enabled: true }] },
    });
    expect(unknown).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'vouchers[0].voucherId', code: 'voucher_not_found' }] },
    });
    const group = (
      await tenant.client.request('POST', '/v1/voucher-groups', {
        body: { name: 'rewards', vouchers: [{ voucherId: 'amazon-de', enabled: true }] },
      })
    ).body;
    await install(tenant, 'SANDBOX_VOUCHERS');
    const scheme = await createScheme(tenant, 'payout', [
      {
        voucherGroupIds: [group.voucherGroupId],
        options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
      },
    ]);
    const inUse = await tenant.client.request('DELETE', `/v1/voucher-groups/${group.voucherGroupId}`);
    expect(inUse).toMatchObject({
      status: 409,
      body: { code: 'voucher_group_in_use', errors: [{ path: `schemes.${scheme.schemeId}` }] },
    });
    expect((await tenant.client.request('DELETE', `/v1/schemes/payout/${scheme.schemeId}`)).status).toBe(204);
    expect((await tenant.client.request('DELETE', `/v1/voucher-groups/${group.voucherGroupId}`)).status).toBe(204);
    expect((await tenant.client.request('GET', `/v1/voucher-groups/${group.voucherGroupId}`)).status).toBe(404);
  });
});

describe('paying through each app', () => {
  async function bankTenant() {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_BANK');
    await createScheme(
      tenant,
      'collect',
      [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1 }] }],
      { isDefault: true },
    );
    return tenant;
  }

  it('SANDBOX_BANK: a debit answered PENDING settles when the provider’s signed callback arrives', async () => {
    const tenant = await bankTenant();
    await bankDebitPaidNow(tenant, 'bank-ok', { instrument: 'bank_ok', amount: '20.00' });
    const settled = await waitForInstruction(tenant, 'bank-ok', (i) => i.status === 'SETTLED', 'bank debit SETTLED');
    expect(settled).toMatchObject({
      appId: 'SANDBOX_BANK',
      paymentMethod: 'BANK_DEBIT',
      providerRef: expect.stringMatching(/^sbx_/),
    });
    const callbacks = await system.orm.em
      .fork()
      .find(ProviderCallback, { tenantId: tenant.tenantId, orderRef: 'bank-ok' });
    expect(callbacks.map((c) => [c.providerRef, c.status, c.deliveredAt !== null])).toEqual([
      [settled.providerRef, 'SETTLED', true],
    ]);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'bank-ok' })).toHaveLength(1);
  });

  it('SANDBOX_BANK: a declined debit of the customer’s waits LATE with the bank’s reason, for another way to pay', async () => {
    const tenant = await bankTenant();
    await bankDebitPaidNow(tenant, 'bank-closed', { instrument: 'bank_account_closed', amount: '20.00' });
    await bankDebitPaidNow(tenant, 'bank-funds', { instrument: 'bank_insufficient_funds', amount: '20.00' });
    for (const [orderRef, code] of [
      ['bank-closed', 'account_closed'],
      ['bank-funds', 'insufficient_funds'],
    ]) {
      expect(
        await waitForInstruction(tenant, orderRef, (i) => i.status === 'LATE', `${orderRef} declined`),
      ).toMatchObject({ failureCode: code });
    }
  });

  it('hands on a result stored that reached no workflow (Temporal away when it came) once two minutes old, and none a week old', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD
    for (const orderRef of ['stored-return', 'stored-late'])
      expect((await order(tenant, orderRef, [instruction('a')])).status).toBe(202);
    const results = new ProviderResults({
      orm: system.orm,
      temporal: system.client,
      logger: createLogger('redelivery', 'silent'),
    });
    /** A verified return of the order's payment, stored as the API stores it, received `ago`, never handed on. */
    const stored = async (orderRef: string, ago: string) => {
      const { providerRef } = await waitForInstruction(tenant, orderRef, (i) => i.status === 'SETTLED', 'paid');
      const reference = { tenantId: tenant.tenantId, orderRef, instructionRef: 'a', providerRef };
      const result = { status: 'RETURNED', providerRef, kind: 'RETURN', code: 'insufficient_funds' } as const;
      const { id } = await system.orm.em
        .fork()
        .transactional((tx) => results.record(tx, 'SANDBOX_CARD', reference, { kind: 'payment', result }));
      await received(id, ago);
      return id;
    };
    const received = (id: string, ago: string) =>
      system.orm.em
        .getConnection()
        .execute(`update provider_callback set received_at = now() - ?::interval where id = ?`, [ago, id]);
    const deliveredAt = async (id: string) =>
      (await system.orm.em.fork().findOneOrFail(ProviderCallback, { id })).deliveredAt ?? null;
    const [due, recent] = [await stored('stored-return', '3 minutes'), await stored('stored-late', '10 seconds')];
    await results.deliverStored();
    expect(
      await waitForInstruction(tenant, 'stored-return', (i) => i.returnedAmount === '20.00', 'the return handed on'),
    ).toMatchObject({ failureCode: 'returned:insufficient_funds' });
    expect(await deliveredAt(due)).not.toBeNull();
    // Too recent: the API's own hand-over and the provider's sending again come first.
    expect(await deliveredAt(recent)).toBeNull();
    // A week old: left to an operator.
    await received(recent, '8 days');
    await results.deliverStored();
    expect(await deliveredAt(recent)).toBeNull();
  });

  it('takes a chargeback whose callback names its tenant in capitals (a provider that keeps it as a Guid)', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD
    expect((await order(tenant, 'capitals', [instruction('a')])).status).toBe(202);
    const settled = await waitForInstruction(tenant, 'capitals', (i) => i.status === 'SETTLED', 'the card payment');
    const response = await cardChargedBack(
      tenant.tenantId.toUpperCase(),
      'capitals',
      settled.providerRef,
      tenant.sandboxApiKey,
    );
    expect(response.status).toBe(202);
    // Told to the order's workflow, not dropped as if its order had ended.
    expect(
      await waitForInstruction(tenant, 'capitals', (i) => i.returnedAmount === '20.00', 'the chargeback taken'),
    ).toMatchObject({ status: 'FAILED', returnedAmount: '20.00' });
  });

  it('takes a chargeback signed with the merchant key replaced since for a payment made before it, and for no payment made after', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD
    const oldKey = tenant.sandboxApiKey;
    const chargeback = (orderRef: string, providerRef: string | undefined, key: string) =>
      cardChargedBack(tenant.tenantId, orderRef, providerRef!, key);
    const settled = (orderRef: string, what: string) =>
      waitForInstruction(tenant, orderRef, (i) => i.status === 'SETTLED', what);
    const configure = (body: Record<string, unknown>) =>
      tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_CARD/configuration', { body });
    expect((await order(tenant, 'before-key', [instruction('a')])).status).toBe(202);
    expect((await order(tenant, 'before-revoked', [instruction('a')])).status).toBe(202);
    const before = await settled('before-key', 'paid under the old key');
    const beforeRevoked = await settled('before-revoked', 'paid under the old key too');
    const newKey = newSandboxApiKey();
    const changing = Date.now();
    const moved = await configure({ configuration: { apiKey: newKey } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    // The tenant sees the old key's time and until when it verifies (the card's 120 days and 7), never the key.
    const [shown] = moved.body.replacedSecretTimes;
    expect(moved.body.replacedSecretTimes).toHaveLength(1);
    expect(shown).toEqual({
      setting: 'apiKey',
      from: expect.any(String),
      replacedAt: expect.any(String),
      verifiesUntil: new Date(Date.parse(shown.replacedAt) + 127 * 86_400_000).toISOString(),
    });
    // The first key's time began at the installation (none was replaced before).
    expect(shown.from).toBe(moved.body.installedAt);
    expect(Date.parse(shown.replacedAt)).toBeGreaterThanOrEqual(changing);
    expect(Date.parse(shown.replacedAt)).toBeLessThanOrEqual(Date.parse(moved.body.updatedAt));
    expect(JSON.stringify(moved.body)).not.toContain(oldKey);
    expect((await order(tenant, 'after-key', [instruction('a')])).status).toBe(202);
    const after = await settled('after-key', 'paid under the new key');
    // The old key, leaked say, cannot take back a payment made since.
    expect((await chargeback('after-key', after.providerRef, oldKey)).status).toBe(401);
    // Nor tell anything of a payment made before but its return or chargeback.
    const declined = { status: 'DECLINED', declineCode: 'do_not_honor' };
    expect((await cardChargedBack(tenant.tenantId, 'before-key', before.providerRef, oldKey, declined)).status).toBe(
      401,
    );
    // The old merchant account still tells of its own payment's chargeback, signed as that payment was.
    expect((await chargeback('before-key', before.providerRef, oldKey)).status).toBe(202);
    expect(
      await waitForInstruction(
        tenant,
        'before-key',
        (i) => i.returnedAmount === '20.00',
        'the old payment charged back',
      ),
    ).toMatchObject({ status: 'FAILED' });
    expect((await tenant.client.request('GET', '/v1/order-management/after-key')).body.instructions[0]).toMatchObject({
      status: 'SETTLED',
    });
    // Nor take back a payout (a return would pay it out again): the other A payment, read as one.
    const asDirection = (direction: 'DEBIT' | 'CREDIT') =>
      system.orm.em
        .fork()
        .nativeUpdate(
          PaymentInstruction,
          { tenantId: tenant.tenantId, providerRef: beforeRevoked.providerRef },
          { direction },
        );
    expect(await asDirection('CREDIT')).toBe(1);
    expect((await chargeback('before-revoked', beforeRevoked.providerRef, oldKey)).status).toBe(401);
    await asDirection('DEBIT');
    // Replaced in turn, the second key covers its own time only: not the payment settled under the first.
    const again = await configure({ configuration: { apiKey: newSandboxApiKey() } });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const listed = await tenant.client.request('GET', '/v1/marketplace/installed');
    const shownNow = listed.body.items.find((i: { appId: string }) => i.appId === 'SANDBOX_CARD').replacedSecretTimes;
    // The latest replaced first: the second key's time begins where the first's ended.
    expect(shownNow).toHaveLength(2);
    expect(shownNow[0].from).toBe(shown.replacedAt);
    expect(shownNow[1]).toEqual(shown);
    expect((await chargeback('before-revoked', beforeRevoked.providerRef, newKey)).status).toBe(401);
    expect((await chargeback('after-key', after.providerRef, newKey)).status).toBe(202);
    // The old keys said to have leaked: they verify nothing more.
    const revoked = await configure({ configuration: {}, replacedSecrets: 'revoke' });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(revoked.body.replacedSecretTimes).toEqual([]);
    expect((await chargeback('before-revoked', beforeRevoked.providerRef, oldKey)).status).toBe(401);
  });

  it('begins a replaced merchant key’s time, where none was kept (configured before times were), at the key’s last change, not at the installation', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD
    const configure = (apiKey: string) =>
      tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_CARD/configuration', {
        body: { configuration: { apiKey } },
      });
    expect((await order(tenant, 'under-first-key', [instruction('a')])).status).toBe(202);
    const paid = await waitForInstruction(tenant, 'under-first-key', (i) => i.status === 'SETTLED', 'paid');
    const secondKey = newSandboxApiKey();
    const first = await configure(secondKey);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect((await order(tenant, 'under-second-key', [instruction('a')])).status).toBe(202);
    const paidSecond = await waitForInstruction(tenant, 'under-second-key', (i) => i.status === 'SETTLED', 'paid');
    const firstChange = first.body.replacedSecretTimes[0].replacedAt;
    expect(firstChange > first.body.installedAt).toBe(true);
    // As an installation configured before times were kept: its last key change is all it knows.
    const legacy = await holdTransaction();
    await legacy.query(
      "update app_installation set retired_secrets_ciphertext = null where tenant_id = $1 and app_id = 'SANDBOX_CARD'",
      [tenant.tenantId],
    );
    await legacy.commit();
    const second = await configure(newSandboxApiKey());
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    // The key replaced now was current from the last change, not from the installation: it verifies
    // no return of a payment settled under the first key.
    expect(second.body.replacedSecretTimes).toEqual([
      expect.objectContaining({ setting: 'apiKey', from: firstChange }),
    ]);
    expect(second.body.replacedSecretTimes[0].replacedAt > firstChange).toBe(true);
    expect((await cardChargedBack(tenant.tenantId, 'under-first-key', paid.providerRef, secondKey)).status).toBe(401);
    // Its own time's payment it still takes back.
    expect((await cardChargedBack(tenant.tenantId, 'under-second-key', paidSecond.providerRef, secondKey)).status).toBe(
      202,
    );
  });

  it('does not collect again a payment returned under a merchant key replaced since, as it does one returned under the current key', async () => {
    const tenant = await system.newTenant(); // SANDBOX_CARD, returns collected again (RECOLLECT)
    const oldKey = tenant.sandboxApiKey;
    const returned = { status: 'RETURNED', returnCode: 'insufficient_funds', returnedAmountMinor: '2000' };
    const settled = async (orderRef: string) => {
      expect((await order(tenant, orderRef, [instruction('a')])).status).toBe(202);
      return (await waitForInstruction(tenant, orderRef, (i) => i.status === 'SETTLED', 'paid under the old key'))
        .providerRef as string;
    };
    const underOld = await settled('returned-old-key');
    const underCurrent = await settled('returned-current-key');
    const newKey = newSandboxApiKey();
    const moved = await tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_CARD/configuration', {
      body: { configuration: { apiKey: newKey } },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect((await cardChargedBack(tenant.tenantId, 'returned-old-key', underOld, oldKey, returned)).status).toBe(202);
    expect(
      (await cardChargedBack(tenant.tenantId, 'returned-current-key', underCurrent, newKey, returned)).status,
    ).toBe(202);
    const taken = (orderRef: string) =>
      waitForInstruction(tenant, orderRef, (i) => i.returnedAmount === '20.00', `${orderRef}: the return taken`);
    // The replaced key may be one replaced because it leaked: the return is told, and the customer is not charged again.
    expect(await taken('returned-old-key')).toMatchObject({
      status: 'FAILED',
      failureCode: 'returned_replaced_secret:insufficient_funds',
    });
    expect(await taken('returned-current-key')).toMatchObject({
      status: 'LATE',
      failureCode: 'returned:insufficient_funds',
    });
    // The tenant, having checked with its provider, collects it again.
    const retried = await tenant.client.request('POST', '/v1/order-management/returned-old-key/instructions/a/retry');
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
  });

  it('takes the end of a mandate stored under a merchant key replaced since (instruments of before they kept their key scope), signed with it, and no other news', async () => {
    const tenant = await bankTenant();
    const oldKey = tenant.sandboxApiKey;
    const store = new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys));
    const stored = async (mandateRef: string) => {
      const em = system.orm.em.fork();
      const { id } = store.add(em, tenant.tenantId, 'SANDBOX_BANK', {
        token: `tok_${randomUUID()}`,
        paymentMethod: 'BANK_DEBIT',
        display: {},
        mandate: { mandateRef, status: 'ACTIVE', signedAt: new Date().toISOString() },
      });
      await em.flush();
      return id;
    };
    const statusOf = async (id: string) =>
      (await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id })).mandateStatus;
    /** The bank's news of a mandate, signed with `key`, at the address naming the tenant (or at one naming none). */
    const bankSays = (mandateRef: string, status: string, key: string, address = `?tenantId=${tenant.tenantId}`) => {
      const body = JSON.stringify({ object: 'mandate', mandateRef, status });
      return fetch(`${system.api.url}/v1/providers/SANDBOX_BANK/callbacks${address}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sandbox-signature': signSandboxCallback(key, body) },
        body,
      });
    };
    const named = (what: string) => `MD-${what}-${randomUUID().slice(0, 8)}`;
    const [cancelled, pending, expired, since] = ['cancelled', 'pending', 'expired', 'since'].map(named);
    const before = {
      cancelled: await stored(cancelled),
      pending: await stored(pending),
      expired: await stored(expired),
    };
    const pendingRow = await system.orm.em.fork().nativeUpdate(
      PaymentInstrument,
      { id: before.pending },
      {
        mandateStatus: 'PENDING',
      },
    );
    expect(pendingRow).toBe(1);
    const moved = await tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_BANK/configuration', {
      body: { configuration: { apiKey: newSandboxApiKey() } },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    // A mandate of the same name stored since (at the new account), and another made since.
    const sameNameSince = await stored(cancelled);
    const madeSince = await stored(since);

    // The old account tells the end of a mandate made there, signed with its key: for the instrument stored then.
    expect((await bankSays(cancelled, 'CANCELLED', oldKey)).status).toBe(202);
    expect(await statusOf(before.cancelled)).toBe('CANCELLED');
    expect(await statusOf(sameNameSince)).toBe('ACTIVE');
    // A confirmation would start debits: refused under the old key.
    expect((await bankSays(pending, 'ACTIVE', oldKey)).status).toBe(401);
    expect(await statusOf(before.pending)).toBe('PENDING');
    // Nor does the old key end a mandate stored since.
    expect((await bankSays(since, 'CANCELLED', oldKey)).status).toBe(401);
    expect(await statusOf(madeSince)).toBe('ACTIVE');
    // At an address that names no tenant (given before addresses did), the same.
    expect((await bankSays(expired, 'EXPIRED', oldKey, '')).status).toBe(202);
    expect(await statusOf(before.expired)).toBe('EXPIRED');
    // The old key said to have leaked: it verifies nothing more.
    const revoked = await tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_BANK/configuration', {
      body: { configuration: {}, replacedSecrets: 'revoke' },
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect((await bankSays(pending, 'CANCELLED', oldKey)).status).toBe(401);
    expect(await statusOf(before.pending)).toBe('PENDING');
  });

  it('takes the end of a mandate made under a merchant key replaced since, whenever it was stored, and of none made under another', async () => {
    const tenant = await bankTenant();
    const [oldKey, newKey] = [tenant.sandboxApiKey, newSandboxApiKey()];
    system.issuedSecrets.push(newKey);
    const store = new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys));
    /** An instrument whose form was exchanged under `key` (as the payment page keeps one). */
    const madeUnder = async (key: string, mandateRef = `MD-made-${randomUUID().slice(0, 8)}`) => {
      const em = system.orm.em.fork();
      const { id } = store.add(
        em,
        tenant.tenantId,
        'SANDBOX_BANK',
        {
          token: `tok_${randomUUID()}`,
          paymentMethod: 'BANK_DEBIT',
          display: {},
          mandate: { mandateRef, status: 'ACTIVE', signedAt: new Date().toISOString() },
        },
        { madeAt: { configuration: {}, secrets: { apiKey: key } } },
      );
      await em.flush();
      return { id, mandateRef };
    };
    const statusOf = async (id: string) =>
      (await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id })).mandateStatus;
    const bankSays = (mandateRef: string, key: string) => {
      const body = JSON.stringify({ object: 'mandate', mandateRef, status: 'CANCELLED' });
      return fetch(`${system.api.url}/v1/providers/SANDBOX_BANK/callbacks?tenantId=${tenant.tenantId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sandbox-signature': signSandboxCallback(key, body) },
        body,
      });
    };
    // Stored before the change, made at the new account (a host whose clock is behind, say).
    const earlyAtNew = await madeUnder(newKey);
    const moved = await tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_BANK/configuration', {
      body: { configuration: { apiKey: newKey } },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    // Stored after it, made at the old account (the page's credentials, read in the minute before).
    const lateAtOld = await madeUnder(oldKey);
    // The old account ends its own mandate, stored late as it was.
    expect((await bankSays(lateAtOld.mandateRef, oldKey)).status).toBe(202);
    expect(await statusOf(lateAtOld.id)).toBe('CANCELLED');
    // And no mandate of the new account's, though stored in the old key's time.
    expect((await bankSays(earlyAtNew.mandateRef, oldKey)).status).toBe(401);
    expect(await statusOf(earlyAtNew.id)).toBe('ACTIVE');
    // Its own account's key ends it.
    expect((await bankSays(earlyAtNew.mandateRef, newKey)).status).toBe(202);
    expect(await statusOf(earlyAtNew.id)).toBe('CANCELLED');
    // Two accounts naming a mandate alike: each key ends its own account's only.
    const atOld = await madeUnder(oldKey);
    const atNew = await madeUnder(newKey, atOld.mandateRef);
    expect((await bankSays(atOld.mandateRef, newKey)).status).toBe(202);
    expect([await statusOf(atOld.id), await statusOf(atNew.id)]).toEqual(['ACTIVE', 'CANCELLED']);
    expect((await bankSays(atOld.mandateRef, oldKey)).status).toBe(202);
    expect(await statusOf(atOld.id)).toBe('CANCELLED');
    // A digest copied from another row does not open: ours to fix (503, sent again), never taken as forged.
    const copied = await madeUnder(newKey);
    const { madeUnderCiphertext } = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: atNew.id });
    await system.orm.em.fork().nativeUpdate(PaymentInstrument, { id: copied.id }, { madeUnderCiphertext });
    const refused = await bankSays(copied.mandateRef, newKey);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: 'callback_unverifiable' });
    expect(await statusOf(copied.id)).toBe('ACTIVE');
  });

  it('ends no mandate under a connector’s replaced signing secret: its account, and its mandates, go on', async () => {
    const [oldSecret, newSecret] = [0, 1].map(() => `whsec_${randomBytes(32).toString('base64')}`);
    system.issuedSecrets.push(oldSecret, newSecret);
    const provider = await startTenantProvider(oldSecret);
    try {
      const tenant = await system.newTenant({ paymentSetup: false });
      await install(tenant, 'HTTP_CONNECTOR', { url: provider.url, signingSecret: oldSecret });
      const em = system.orm.em.fork();
      const mandateRef = `MD-own-${randomUUID().slice(0, 8)}`;
      const { id } = new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys)).add(
        em,
        tenant.tenantId,
        'HTTP_CONNECTOR',
        {
          token: `tok_${randomUUID()}`,
          paymentMethod: 'BANK_DEBIT',
          display: {},
          mandate: { mandateRef, status: 'ACTIVE', signedAt: new Date().toISOString() },
        },
        // As the payment page keeps one: its form exchanged under the secret of then.
        { madeAt: { configuration: { url: provider.url }, secrets: { signingSecret: oldSecret } } },
      );
      await em.flush();
      const rotated = await tenant.client.request('PUT', '/v1/marketplace/installed/HTTP_CONNECTOR/configuration', {
        body: { configuration: { url: provider.url, signingSecret: newSecret } },
      });
      expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
      // Kept, and in time: it still verifies returns of collections settled under it.
      expect(rotated.body.replacedSecretTimes).toMatchObject([{ setting: 'signingSecret' }]);
      const providerSays = (secret: string) => {
        const body = JSON.stringify({ object: 'mandate', mandateRef, status: 'CANCELLED' });
        const [msgId, at] = [`msg_${randomUUID()}`, new Date()];
        return fetch(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks?tenantId=${tenant.tenantId}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': msgId,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': new Webhook(secret.replace(/^whsec_/, '')).sign(msgId, at, body),
          },
          body,
        });
      };
      const statusOf = async () => (await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id })).mandateStatus;
      // The old secret, leaked say, ends no mandate of the account it was rotated on.
      expect((await providerSays(oldSecret)).status).toBe(401);
      expect(await statusOf()).toBe('ACTIVE');
      // The new one speaks for the account's mandates, those made under the old one too.
      const taken = await providerSays(newSecret);
      expect(taken.status).toBe(202);
      expect(await taken.json()).toMatchObject({ duplicate: false });
      expect(await statusOf()).toBe('CANCELLED');
    } finally {
      await provider.close();
    }
  });

  it('keeps a sandbox merchant’s key while a payment through it is under way or due soon, and changes it otherwise', async () => {
    const tenant = await bankTenant();
    const configure = (configuration: Record<string, unknown>) =>
      tenant.client.request('PUT', '/v1/marketplace/installed/SANDBOX_BANK/configuration', { body: { configuration } });
    // Held PENDING at the bank: its key is out.
    await bankDebitPaidNow(tenant, 'held-key', { instrument: 'bank_held', amount: '20.00' });
    await waitForInstruction(tenant, 'held-key', (i) => i.status === 'PROCESSING', 'the debit pending at the bank');
    const moved = await configure({ apiKey: newSandboxApiKey() });
    expect(moved).toMatchObject({
      status: 409,
      body: { code: 'app_in_use', errors: [{ path: 'configuration.apiKey', code: 'payments_under_way' }] },
    });
    // The key left out, or given again as it is, moves nothing.
    const changedAt = async () =>
      (await system.orm.em.fork().findOneOrFail(AppInstallation, { tenantId: tenant.tenantId, appId: 'SANDBOX_BANK' }))
        .keyScopeChangedAt;
    expect((await configure({})).status).toBe(200);
    expect((await configure({ apiKey: tenant.sandboxApiKey })).status).toBe(200);
    expect(await changedAt(), 'no move, so reconciliation keeps its days').toBeNull();

    // Settled, and another only due in a month: nothing is out.
    await system.sandbox.settleHeldDebit({ tenantId: tenant.tenantId, orderRef: 'held-key' });
    await waitForInstruction(tenant, 'held-key', (i) => i.status === 'SETTLED', 'the held debit settled');
    const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
    const later = [
      instruction('a', {
        paymentMethod: 'BANK_DEBIT',
        financialInstrumentId: 'bank_ok',
        openDate: soon(0),
        dueDate: inDays(30),
      }),
    ];
    expect((await order(tenant, 'due-later', later)).status).toBe(202);
    await waitForInstruction(tenant, 'due-later', (i) => i.status === 'OPEN', 'the debit open');
    const renewed = newSandboxApiKey();
    system.issuedSecrets.push(renewed);
    const renewing = Date.now();
    expect((await configure({ apiKey: renewed })).status).toBe(200);
    // Reconciliation runs no day before it: those payments are in the old merchant's ledger.
    expect((await changedAt())!.getTime()).toBeGreaterThanOrEqual(renewing - 1000);

    // A card payment due in five minutes: its call may start on a worker that read the old key.
    const cards = await system.newTenant();
    const dueSoon = [instruction('a', { openDate: soon(0), dueDate: soon(300) })];
    expect((await order(cards, 'due-soon', dueSoon)).status).toBe(202);
    await waitForInstruction(cards, 'due-soon', (i) => i.status === 'OPEN', 'the card payment open');
    const cardKey = await cards.client.request('PUT', '/v1/marketplace/installed/SANDBOX_CARD/configuration', {
      body: { configuration: { apiKey: newSandboxApiKey() } },
    });
    expect(cardKey).toMatchObject({ status: 409, body: { code: 'app_in_use' } });
  });

  it('refuses a callback whose signature does not verify, and changes nothing', async () => {
    const tenant = await bankTenant();
    await bankDebitPaidNow(tenant, 'forged', { instrument: 'bank_ok', amount: '20.00' });
    const settled = await waitForInstruction(tenant, 'forged', (i) => i.status === 'SETTLED', 'bank debit SETTLED');
    const forgedRef = `sbx_forged_${randomBytes(4).toString('hex')}`;
    const body = JSON.stringify({
      id: forgedRef,
      appId: 'SANDBOX_BANK',
      status: 'DECLINED',
      declineCode: 'forged',
      reference: { tenantId: tenant.tenantId, orderRef: 'forged', instructionRef: 'a' },
    });
    const send = (signature: string, raw = body) =>
      fetch(`${system.api.url}/v1/providers/SANDBOX_BANK/callbacks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sandbox-signature': signature },
        body: raw,
      });
    for (const response of [
      await send(signSandboxCallback('sk_test_not_the_tenants_key', body)),
      await send(signSandboxCallback(tenant.sandboxApiKey, body), body.replace('forged"', 'forgeD"')),
      await send('t=1,v1=00'),
    ]) {
      expect(response.status).toBe(401);
      expect(((await response.json()) as { code: string }).code).toBe('invalid_signature');
    }
    expect(await system.orm.em.fork().count(ProviderCallback, { providerRef: forgedRef })).toBe(0);
    expect((await tenant.client.request('GET', '/v1/order-management/forged')).body.instructions[0]).toMatchObject({
      status: 'SETTLED',
      providerRef: settled.providerRef,
    });
    // Signed with the tenant's key, it still names no payment the instruction made: the same 404 as an unknown payment.
    const unknown = await send(signSandboxCallback(tenant.sandboxApiKey, body));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('payment_not_found');
    expect(await system.orm.em.fork().count(ProviderCallback, { providerRef: forgedRef })).toBe(0);
    expect((await tenant.client.request('GET', '/v1/order-management/forged')).body.instructions[0]).toMatchObject({
      status: 'SETTLED',
      providerRef: settled.providerRef,
    });
  });

  it('SANDBOX_VOUCHERS: a payout of a voucher from the scheme’s groups answers with its code', async () => {
    const tenant = await system.newTenant({ paymentSetup: false });
    await install(tenant, 'SANDBOX_VOUCHERS');
    const group = (
      await tenant.client.request('POST', '/v1/voucher-groups', {
        body: {
          name: 'rewards',
          vouchers: [
            { voucherId: 'amazon-de', enabled: true },
            { voucherId: 'apple-uk', enabled: false },
          ],
        },
      })
    ).body;
    await createScheme(
      tenant,
      'payout',
      [
        {
          voucherGroupIds: [group.voucherGroupId],
          options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
        },
      ],
      { isDefault: true },
    );
    const payout = (overrides: Record<string, unknown>) =>
      instruction('p', { direction: 'CREDIT', country: 'DE', ...overrides });
    const notOffered = await order(tenant, 'voucher-no', [
      payout({ financialInstrumentId: 'apple-uk', currency: 'GBP', country: 'GB', amount: '25.00' }),
    ]);
    expect(notOffered).toMatchObject({
      status: 400,
      body: { errors: [{ path: 'instructions[0].financialInstrumentId', code: 'voucher_not_offered' }] },
    });
    expect(
      (await order(tenant, 'voucher-1', [payout({ financialInstrumentId: 'amazon-de', amount: '30.00' })])).status,
    ).toBe(202);
    const paid = await waitForInstruction(tenant, 'voucher-1', (i) => i.status === 'SETTLED', 'voucher paid out');
    expect(paid).toMatchObject({
      paymentMethod: 'VOUCHER',
      appId: 'SANDBOX_VOUCHERS',
      voucherCode: expect.stringMatching(/^VCH-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/),
    });
  });

  it('HTTP_CONNECTOR: forwards a payment to the tenant’s own provider, signed, and takes its signed callback', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    system.issuedSecrets.push(secret);
    const provider = await startTenantProvider(secret);
    try {
      const tenant = await system.newTenant({ paymentSetup: false });
      await install(tenant, 'HTTP_CONNECTOR', { url: provider.url, signingSecret: secret });
      await createScheme(
        tenant,
        'collect',
        [{ options: [{ appId: 'HTTP_CONNECTOR', paymentMethods: ['CARD', 'BANK_DEBIT'], priority: 1 }] }],
        { isDefault: true },
      );
      await order(tenant, 'own-card', [instruction('a', { financialInstrumentId: 'card_1' })]);
      expect(
        await waitForInstruction(tenant, 'own-card', (i) => i.status === 'SETTLED', 'own provider card SETTLED'),
      ).toMatchObject({ appId: 'HTTP_CONNECTOR', providerRef: 'own-1' });
      await bankDebitPaidNow(tenant, 'own-bank', { appId: 'HTTP_CONNECTOR', instrument: 'iban_1', amount: '20.00' });
      const pending = await waitForInstruction(
        tenant,
        'own-bank',
        (i) => i.providerRef === 'own-2',
        'own provider bank PENDING',
      );
      expect(pending.status).toBe('PROCESSING');
      // Every request carried a valid Standard Webhooks signature, and the same key on a retry.
      const seen = provider.requests.map((r) => [r.verified, r.body.paymentMethod, r.body.reference.orderRef]);
      expect(seen.sort((a, b) => String(a[2]).localeCompare(String(b[2])))).toEqual([
        [true, 'BANK_DEBIT', 'own-bank'],
        [true, 'CARD', 'own-card'],
      ]);
      const callback = JSON.stringify({
        providerRef: 'own-2',
        status: 'SETTLED',
        reference: { tenantId: tenant.tenantId, orderRef: 'own-bank', instructionRef: 'a' },
      });
      const id = 'msg_1';
      const timestamp = new Date();
      const signature = new Webhook(secret.replace(/^whsec_/, '')).sign(id, timestamp, callback);
      const headers = {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      };
      const forged = await fetch(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
        method: 'POST',
        headers: { ...headers, 'webhook-signature': 'v1,AAAA' },
        body: callback,
      });
      expect(forged.status).toBe(401);
      const genuine = await fetch(`${system.api.url}/v1/providers/HTTP_CONNECTOR/callbacks`, {
        method: 'POST',
        headers: { ...headers, 'webhook-signature': signature },
        body: callback,
      });
      expect(genuine.status).toBe(202);
      await waitForInstruction(
        tenant,
        'own-bank',
        (i) => i.status === 'SETTLED',
        'own provider bank SETTLED by callback',
      );
    } finally {
      await provider.close();
    }
  });
});

describe('exactly once', () => {
  it('charges once when the provider held the first call past its timeout and the retry came', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'held', [instruction('a', { financialInstrumentId: 'card_timeout' })]);
    await waitForInstruction(
      tenant,
      'held',
      (i) => i.status === 'SETTLED',
      'held payment SETTLED after a retry',
      60_000,
    );
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'held' });
    expect(charges.map((c) => [c.idempotencyKey, c.status])).toEqual([[`${tenant.tenantId}:held:a:1`, 'SETTLED']]);
  });

  it('charges each instruction once across a restart of the provider in the middle of the order', async () => {
    const tenant = await system.newTenant();
    await order(tenant, 'restarted', [instruction('first'), instruction('second', { dueDate: soon(6) })]);
    const readBoth = async () =>
      (await tenant.client.request('GET', '/v1/order-management/restarted')).body.instructions as any[];
    await eventually(readBoth, (both) => both[0].status === 'SETTLED', { what: 'first instruction SETTLED' });
    await system.sandbox.restart();
    await eventually(readBoth, (both) => both[1].status === 'SETTLED', {
      what: 'second instruction SETTLED after the restart',
    });
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'restarted' });
    expect(charges.map((c) => c.instructionRef).sort()).toEqual(['first', 'second']);
    // A retried call of the first, after the restart, is answered from the persisted ledger: no second charge.
    const replay = await fetch(`${system.sandbox.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tenant.sandboxApiKey}`,
        'idempotency-key': `${tenant.tenantId}:restarted:first:1`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        appId: 'SANDBOX_CARD',
        paymentMethod: 'CARD',
        direction: 'DEBIT',
        amountMinor: '2000',
        currency: 'EUR',
        country: 'FR',
        instrument: 'card_ok',
        reference: { tenantId: tenant.tenantId, orderRef: 'restarted', instructionRef: 'first' },
      }),
    });
    expect(replay.status).toBe(200);
    expect(((await replay.json()) as { id: string }).id).toBe(
      charges.find((c) => c.instructionRef === 'first')!.providerRef,
    );
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'restarted' })).toHaveLength(2);
  });
});

describe('logs', () => {
  it('never contain a private key, an app secret, a signature header or an access token', () => {
    expectNoSecretsInLogs(system);
  });
});

interface ProviderRequest {
  verified: boolean;
  body: any;
}

/** A tenant's own payment provider on loopback, speaking the HTTP_CONNECTOR protocol and checking our signatures. */
async function startTenantProvider(secret: string) {
  const webhook = new Webhook(secret.replace(/^whsec_/, ''));
  const requests: ProviderRequest[] = [];
  const refs = new Map<string, string>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      let verified = true;
      try {
        webhook.verify(raw, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      const body = raw ? JSON.parse(raw) : {};
      if (req.method === 'POST' && req.url === '/pay/payments') {
        const key = req.headers['idempotency-key'] as string;
        if (!refs.has(key)) {
          requests.push({ verified, body });
          refs.set(key, `own-${refs.size + 1}`);
        }
        const providerRef = refs.get(key)!;
        res.writeHead(verified ? 201 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ providerRef, status: body.paymentMethod === 'CARD' ? 'SETTLED' : 'PENDING' }));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pay`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
