import { PAYMENT_METHODS } from '../../domain/scheme.js';
import { z } from '../http/zod.js';

const AppIdSchema = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{1,63}$/, { error: 'must be an app id such as SANDBOX_CARD' })
  .openapi({ example: 'SANDBOX_CARD' });

export const AppIdParamsSchema = z.object({ appId: AppIdSchema });

export const MarketplaceAppSchema = z
  .object({
    appId: z.string(),
    name: z.string(),
    description: z.string(),
    directions: z.array(z.enum(['collect', 'payout'])),
    paymentMethods: z.array(z.enum(PAYMENT_METHODS)),
    countries: z.array(z.string()).openapi({ description: 'ISO 3166-1 alpha-2; empty means any' }),
    currencies: z.array(z.string()).openapi({ description: 'ISO 4217; empty means any' }),
    configurationSchema: z.record(z.string(), z.unknown()).openapi({
      description: 'JSON Schema of `configuration` at install; fields marked writeOnly are secrets, never shown again',
    }),
  })
  .openapi('MarketplaceApp');

export const MarketplaceAppListSchema = z
  .object({ items: z.array(MarketplaceAppSchema), nextCursor: z.null() })
  .openapi('MarketplaceAppList');

const configuration = z.record(z.string(), z.unknown()).openapi({
  description: 'Checked against the app’s configurationSchema (GET /v1/marketplace/apps/{appId})',
  example: { apiKey: 'sk_test_4eC39HqLyjWDarjtT1zdp7dc' },
});

export const ConfigurationBodySchema = z.object({ configuration }).strict().openapi('AppConfiguration');

export const ReconfigurationBodySchema = z
  .object({
    configuration,
    replacedSecrets: z
      .enum(['keep', 'revoke'])
      .optional()
      .openapi({
        description:
          'keep (the default): a callback secret this replaces (a sandbox apiKey, a connector’s signingSecret), and those ' +
          'replaced before, still verify returns and chargebacks of collections settled while each was current, for the ' +
          'app’s reversal window and 7 days. revoke: none does from now on (a secret that leaked); such callbacks are then ' +
          'refused. The configuration is replaced as ever: send it as it is to revoke alone.',
      }),
  })
  .strict()
  .openapi('AppReconfiguration');

export const InstalledAppSchema = z
  .object({
    appId: z.string(),
    name: z.string(),
    configuration: z
      .record(z.string(), z.unknown())
      .openapi({ description: 'The plain settings; secrets are never shown' }),
    secretsSet: z.array(z.string()).openapi({ description: 'Names of the secret settings that hold a value' }),
    replacedSecretTimes: z
      .array(
        z.object({
          setting: z.string().openapi({
            description: 'The callback secret’s setting (a sandbox `apiKey`, a connector’s `signingSecret`)',
          }),
          from: z.iso.datetime().openapi({
            description:
              'When the value replaced became current (for a value set before times were kept: the sandbox key’s last change, or the installation)',
          }),
          replacedAt: z.iso.datetime().openapi({ description: 'When it was replaced' }),
          verifiesUntil: z.iso.datetime().openapi({
            description:
              'Until when it still verifies returns of what was settled from `from` to `replacedAt` (and, for a sandbox key, the end of a mandate made under it)',
          }),
        }),
      )
      .nullable()
      .openapi({
        description:
          'Each time of a replaced callback secret that still verifies returns and chargebacks of collections settled in it, the latest ' +
          'replaced first; never a value. `replacedSecrets: revoke` in a configuration change ends them all. Null when they cannot be ' +
          'read just now (the master key).',
      }),
    installedAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('InstalledApp');

export const InstalledAppListSchema = z
  .object({ items: z.array(InstalledAppSchema), nextCursor: z.string().nullable() })
  .openapi('InstalledAppList');
