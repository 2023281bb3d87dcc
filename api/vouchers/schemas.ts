import { AmountSchema, CountrySchema, CurrencySchema, TextSchema } from '../http/common-schemas.js';
import { z } from '../http/zod.js';

export const VoucherSearchQuerySchema = z
  .object({
    brand: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'Brand name, case-insensitive', example: 'Amazon' }),
    country: CountrySchema.optional(),
    currency: CurrencySchema.optional(),
    amount: AmountSchema.optional().openapi({
      description: 'Only vouchers that can be issued for this amount (needs currency)',
    }),
  })
  .strict()
  .refine((q) => q.amount === undefined || q.currency !== undefined, {
    error: 'amount needs a currency',
    path: ['currency'],
    params: { code: 'required' },
  });

export const VoucherSchema = z
  .object({
    voucherId: z.string(),
    appId: z.string(),
    brand: z.string(),
    name: z.string(),
    countries: z.array(z.string()),
    currencies: z.array(z.string()),
    valueType: z.enum(['FIXED', 'VARIABLE']),
    fixedValues: z
      .array(z.string())
      .nullable()
      .openapi({ description: 'FIXED vouchers: the face values, in the voucher’s currency' }),
    minAmount: z.string().nullable(),
    maxAmount: z.string().nullable(),
  })
  .openapi('Voucher');

export const VoucherListSchema = z
  .object({ items: z.array(VoucherSchema), nextCursor: z.null() })
  .openapi('VoucherList');

export const VoucherGroupBodySchema = z
  .object({
    name: TextSchema(200),
    vouchers: z
      .array(z.object({ voucherId: z.string().min(1).max(100), enabled: z.boolean().default(true) }).strict())
      .max(200)
      .openapi({ description: 'Vouchers of the catalog (GET /v1/catalog/vouchers)' }),
  })
  .strict()
  .openapi('VoucherGroupInput');

export const VoucherGroupSchema = z
  .object({
    voucherGroupId: z.uuid(),
    name: z.string(),
    vouchers: z.array(z.object({ voucherId: z.string(), enabled: z.boolean() })),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('VoucherGroup');

export const VoucherGroupListSchema = z
  .object({ items: z.array(VoucherGroupSchema), nextCursor: z.string().nullable() })
  .openapi('VoucherGroupList');

export const VoucherGroupIdParamsSchema = z.object({ voucherGroupId: z.uuid() });
