import {
  compareDecimals,
  DEFAULT_PRE_NOTIFICATION_DAYS,
  MIN_BANK_DEBIT_NOTICE_DAYS,
  PAYMENT_METHODS,
  type SchemeKind,
} from '../../domain/scheme.js';
import { AmountSchema, CountrySchema, CurrencySchema, TextSchema } from '../http/common-schemas.js';
import { z } from '../http/zod.js';

const BoundSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,17})(\.\d{1,3})?$/, { error: 'must be a decimal amount such as "10.00"' })
  .openapi({ description: 'Inclusive bound, in major units of the payment’s currency', example: '10.00' });

// zod runs a rule's refinement even when a bound failed its pattern (a pattern's issue does not
// stop the parse), so the range is compared only between bounds that are amounts.
const isBound = (value: string | null | undefined): value is string =>
  value != null && BoundSchema.safeParse(value).success;

const OptionSchema = z
  .object({
    appId: z.string().min(1).max(64).openapi({ example: 'SANDBOX_CARD' }),
    paymentMethods: z.array(z.enum(PAYMENT_METHODS)).min(1).max(PAYMENT_METHODS.length),
    priority: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .openapi({ description: 'Lower wins when two apps offer the same method' }),
    preNotificationDays: z
      .number()
      .int()
      .min(0)
      .max(60)
      .optional()
      .openapi({
        description:
          'Collections: days before the charge date the customer is told (event instruction.upcoming). ' +
          `Default ${DEFAULT_PRE_NOTIFICATION_DAYS.BANK_DEBIT} for BANK_DEBIT (at least ${MIN_BANK_DEBIT_NOTICE_DAYS}), 0 for the others`,
      }),
  })
  .strict()
  .refine(
    (o) =>
      o.preNotificationDays === undefined ||
      !o.paymentMethods.includes('BANK_DEBIT') ||
      o.preNotificationDays >= MIN_BANK_DEBIT_NOTICE_DAYS,
    {
      error: `a bank debit's customer is told at least ${MIN_BANK_DEBIT_NOTICE_DAYS} day before`,
      path: ['preNotificationDays'],
      params: { code: 'notice_too_short' },
    },
  )
  .openapi('SchemeOption');

function ruleSchema(kind: SchemeKind) {
  const base = z.object({
    currencies: z
      .array(CurrencySchema)
      .max(200)
      .default([])
      .openapi({ description: 'Empty matches any currency (then the rule can have no amount bounds)' }),
    countries: z.array(CountrySchema).max(300).default([]).openapi({ description: 'Empty matches any country' }),
    minAmount: BoundSchema.nullable().optional(),
    maxAmount: BoundSchema.nullable().optional(),
    options: z.array(OptionSchema).min(1).max(20),
  });
  const rule = kind === 'payout' ? base.extend({ voucherGroupIds: z.array(z.uuid()).max(20).default([]) }) : base;
  return rule
    .strict()
    .refine((r) => !isBound(r.minAmount) || !isBound(r.maxAmount) || compareDecimals(r.minAmount, r.maxAmount) <= 0, {
      error: 'minAmount must not be above maxAmount',
      path: ['maxAmount'],
      params: { code: 'range_inverted' },
    })
    .openapi(kind === 'payout' ? 'PayoutSchemeRule' : 'CollectSchemeRule');
}

export function schemeBodySchema(kind: SchemeKind) {
  return (
    z
      .object({
        name: TextSchema(200),
        isDefault: z
          .boolean()
          .optional()
          .openapi({
            description:
              'Use for instructions that name no scheme (one default per kind). Left out: not the default when created, ' +
              'unchanged when edited (an edit of the rules alone never leaves orders naming no scheme without one)',
          }),
        rules: z
          .array(ruleSchema(kind))
          .min(1)
          .max(50)
          .openapi({ description: 'Evaluated in order; the first rule that matches wins' }),
      })
      .strict()
      // 1000 is ten euros, a thousand yen or a thousand dinars: a bound means nothing without its
      // currency. Checked on what is written, not on schemes stored before (their answers stay valid).
      .superRefine((body, ctx) =>
        body.rules.forEach((rule, n) => {
          if (rule.currencies.length === 0 && (rule.minAmount != null || rule.maxAmount != null))
            ctx.addIssue({
              code: 'custom',
              message: 'amount bounds need the currencies they are written in',
              path: ['rules', n, 'currencies'],
              params: { code: 'bounds_need_currencies' },
            });
        }),
      )
      .openapi(kind === 'payout' ? 'PayoutSchemeInput' : 'CollectSchemeInput')
  );
}

export function schemeSchema(kind: SchemeKind) {
  return z
    .object({
      schemeId: z.uuid(),
      kind: z.literal(kind),
      name: z.string(),
      version: z.number().int().openapi({ description: 'Each edit publishes a new version' }),
      isDefault: z.boolean(),
      rules: z.array(ruleSchema(kind)),
      createdAt: z.iso.datetime(),
      updatedAt: z.iso.datetime(),
    })
    .openapi(kind === 'payout' ? 'PayoutScheme' : 'CollectScheme');
}

export const SchemeIdParamsSchema = z.object({ schemeId: z.uuid() });

export const OptionsQuerySchema = z
  .object({ amount: AmountSchema, currency: CurrencySchema, country: CountrySchema })
  .strict();

export const ResolvedOptionSchema = z
  .object({
    paymentMethod: z.enum(PAYMENT_METHODS),
    appId: z.string(),
    priority: z.number().int(),
    voucherGroupIds: z.array(z.string()),
    preNotificationDays: z.number().int().optional().openapi({ description: 'Days of notice before its charge date' }),
  })
  .openapi('PaymentOption');

export const OptionsSchema = z
  .object({
    schemeId: z.uuid(),
    version: z.number().int(),
    options: z.array(ResolvedOptionSchema).openapi({
      description: 'Best first; empty when no rule matches with an app paying in the currency and country',
    }),
  })
  .openapi('SchemeOptions');
