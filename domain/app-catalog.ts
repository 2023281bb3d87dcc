import { z } from 'zod';
import type { PaymentMethod, SchemeKind } from './payment-method.js';

/**
 * An app of the marketplace: what it can do and how a tenant configures it. Fields of the
 * configuration marked `writeOnly` are secrets: sealed at rest, never shown again once set.
 */
export interface AppDefinition {
  appId: string;
  name: string;
  description: string;
  /** collect: money from customers; payout: money to them. */
  directions: SchemeKind[];
  paymentMethods: PaymentMethod[];
  /** ISO 3166-1 alpha-2 codes; empty means any country. */
  countries: string[];
  currencies: string[];
  /**
   * Days after a collection settles during which it may still be refunded, returned by the bank or
   * charged back: its order stays open that long (ARCHITECTURE.md, "After settlement"). 0: payouts only.
   */
  reversalWindowDays: number;
  configuration: z.ZodObject;
  /**
   * The configuration's fields that say which provider account knows a payment's idempotency key (a
   * sandbox merchant's key scopes its keys; a connector's URL is its provider). Changed, a key kept
   * for a payment of unknown outcome would be asked of a provider that never saw it, which would take
   * the payment again. The list is part of every key's kept digest (domain/key-scope.ts): a release
   * changing it makes each key through the app under way read as moved, an unknown outcome.
   */
  keyScope: readonly string[];
  /**
   * The secret field its provider signs callbacks with. Replaced, the old value still verifies
   * returns and chargebacks of collections settled while it was current, for their reversal window
   * (domain/retired-secrets.ts): a chargeback of one is signed as that payment was.
   */
  callbackSecret?: string;
}

const secret = (schema: z.ZodString, description: string) => schema.meta({ writeOnly: true, description });

const sandboxApiKey = secret(
  z.string().regex(/^sk_test_[A-Za-z0-9_]{8,}$/, {
    error: 'must be a sandbox secret key: sk_test_ and at least 8 letters or digits',
  }),
  'The merchant account’s secret key at the sandbox provider (sk_test_…); callbacks are signed with it',
);

/** The main SEPA countries: the EU's, the rest of the EEA's, and Andorra, Monaco, San Marino, Switzerland, the UK and the Vatican. */
const SEPA_COUNTRIES = [
  ...['AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU'],
  ...['LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK', 'IS', 'LI', 'NO', 'AD', 'CH', 'GB', 'MC', 'SM', 'VA'],
];

export const APP_CATALOG: readonly AppDefinition[] = [
  {
    appId: 'SANDBOX_CARD',
    name: 'Sandbox cards',
    description:
      'Card collections through the sandbox provider, answered at once. Test cards choose the outcome (README).',
    directions: ['collect'],
    paymentMethods: ['CARD'],
    countries: [],
    currencies: ['EUR', 'GBP', 'USD', 'JPY', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN'],
    // Card schemes take disputes for 120 days.
    reversalWindowDays: 120,
    keyScope: ['apiKey'],
    callbackSecret: 'apiKey',
    configuration: z
      .object({
        apiKey: sandboxApiKey,
        statementDescriptor: z
          .string()
          .min(1)
          .max(22)
          .optional()
          .meta({ description: 'Shown on the customer’s card statement' }),
      })
      .strict(),
  },
  {
    appId: 'SANDBOX_BANK',
    name: 'Sandbox bank debits and transfers',
    description:
      'Bank debits (collections) and bank transfers (payouts) that settle later: the provider calls back with the result.',
    directions: ['collect', 'payout'],
    paymentMethods: ['BANK_DEBIT', 'BANK_TRANSFER'],
    countries: SEPA_COUNTRIES,
    currencies: ['EUR', 'GBP', 'SEK', 'NOK', 'DKK', 'PLN', 'CHF', 'CZK', 'HUF', 'RON', 'ISK'],
    // SEPA: a debit may be returned for eight weeks.
    reversalWindowDays: 56,
    keyScope: ['apiKey'],
    callbackSecret: 'apiKey',
    configuration: z.object({ apiKey: sandboxApiKey }).strict(),
  },
  {
    appId: 'SANDBOX_VOUCHERS',
    name: 'Sandbox vouchers',
    description: 'Payouts as gift vouchers from the voucher catalog; the payout answers with the voucher code.',
    directions: ['payout'],
    paymentMethods: ['VOUCHER'],
    countries: ['GB', 'DE', 'FR', 'NL', 'US', 'IE'],
    currencies: ['GBP', 'EUR', 'USD'],
    reversalWindowDays: 0,
    keyScope: ['apiKey'],
    callbackSecret: 'apiKey',
    configuration: z.object({ apiKey: sandboxApiKey }).strict(),
  },
  {
    appId: 'HTTP_CONNECTOR',
    name: 'Your own provider over HTTP',
    description:
      'Forwards each payment as an HTTP request signed per the Standard Webhooks specification to a URL you run, ' +
      'and takes asynchronous results back the same way (README, "Your own provider").',
    directions: ['collect', 'payout'],
    paymentMethods: ['CARD', 'BANK_DEBIT', 'BANK_TRANSFER'],
    countries: [],
    currencies: [],
    reversalWindowDays: 120,
    keyScope: ['url'],
    callbackSecret: 'signingSecret',
    configuration: z
      .object({
        url: z
          .url({ protocol: /^https?$/ })
          .max(2000)
          // Its paths (`/payments`, `/payments/{ref}`) are added to it: after a query or fragment they
          // would be sent nowhere, and every call (a look-up under a key too) would reach the same path.
          .refine((url) => !/[?#]/.test(url), {
            error: 'must hold no query or fragment: the provider’s paths are added to it',
            params: { code: 'url_has_query' },
          })
          .meta({ description: 'Base URL of your provider: https, or http on loopback in local development' }),
        signingSecret: secret(
          z
            .string()
            .regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, { error: 'must be whsec_ and at least 24 bytes in base64' }),
          'Signs requests to your provider and verifies its callbacks (whsec_ and base64, as Standard Webhooks)',
        ),
        timeoutMs: z
          .number()
          .int()
          .min(1000)
          .max(30_000)
          .optional()
          .meta({ description: 'How long one request may take; default 10000' }),
      })
      .strict(),
  },
];

/** Per app with one, the days its collections may be reversed: what an order's workflow is started with. */
export function reversalWindows(): Record<string, number> {
  return Object.fromEntries(
    APP_CATALOG.filter((a) => a.reversalWindowDays > 0).map((a) => [a.appId, a.reversalWindowDays]),
  );
}

export function findApp(appId: string): AppDefinition | undefined {
  return APP_CATALOG.find((app) => app.appId === appId);
}

/** Whether an app's currencies or countries (an empty list: any) hold one of `wanted`. */
export function listsAny(list: readonly string[], wanted: readonly string[]): boolean {
  return list.length === 0 || wanted.some((one) => list.includes(one));
}

/** Whether an app of the catalog pays in this currency and country; one not in the catalog is not judged here. */
export function appServes(appId: string, currency: string, country: string): boolean {
  const app = findApp(appId);
  return !app || (listsAny(app.currencies, [currency]) && listsAny(app.countries, [country]));
}

/** The names of an app's secret fields. */
export function secretFields(app: AppDefinition): string[] {
  return Object.entries(app.configuration.shape)
    .filter(([, field]) => (z.globalRegistry.get(unwrapOptional(field as z.ZodType))?.writeOnly ?? false) === true)
    .map(([name]) => name);
}

function unwrapOptional(field: z.ZodType): z.ZodType {
  return field instanceof z.ZodOptional ? (field.unwrap() as z.ZodType) : field;
}
