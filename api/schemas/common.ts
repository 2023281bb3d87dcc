import { z } from '../zod.js';
import { isCountryCode } from '../../domain/country.js';
import { isPayableCurrency } from '../../domain/currency.js';
import { parseScheduleDate } from '../../domain/dates.js';
import { REF_PATTERN } from '../../domain/refs.js';

export const RefSchema = z
  .string()
  .regex(REF_PATTERN, { error: 'must be 1–50 characters of letters, digits, "-", "_" or "."' })
  .openapi({ example: 'ORD-2027-0001' });

export const CurrencySchema = z
  .string()
  .refine((v) => /^[A-Z]{3}$/.test(v) && isPayableCurrency(v), { error: 'must be an ISO 4217 currency code such as EUR', params: { code: 'invalid_currency' } })
  .openapi({ example: 'EUR', description: 'ISO 4217 alpha-3' });

export const CountrySchema = z
  .string()
  .refine(isCountryCode, { error: 'must be an ISO 3166-1 alpha-2 country code such as GB', params: { code: 'invalid_country' } })
  .openapi({ example: 'GB', description: 'ISO 3166-1 alpha-2' });

export const AmountSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,17})(\.\d+)?$/, { error: 'must be a positive decimal string such as "125.50"' })
  .openapi({ example: '125.50', description: 'Decimal string; as many fraction digits as the currency has at most' });

export const ScheduleDateSchema = z
  .string()
  .refine((v) => parseScheduleDate(v) !== undefined, {
    error: 'must be an ISO 8601 date (2027-01-31) or date-time with offset (2027-01-31T09:00:00Z)',
    params: { code: 'invalid_date' },
  })
  .openapi({ example: '2027-01-31' });

export const MetadataSchema = z
  .record(
    z.string().min(1).max(40, { error: 'metadata keys are at most 40 characters' }),
    z.string().max(500, { error: 'metadata values are at most 500 characters' }),
  )
  .refine((m) => Object.keys(m).length <= 50, { error: 'metadata has at most 50 keys', params: { code: 'too_many_keys' } })
  .openapi({ example: { policy: 'P-123' } });

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string().openapi({ example: 'validation_failed' }),
    detail: z.string(),
    errors: z.array(z.object({ path: z.string(), code: z.string(), message: z.string() })).optional(),
    requestId: z.string().optional(),
  })
  .openapi('Problem');

export const IdempotencyHeaderSchema = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().openapi({
    description: 'Same key and body within 24 h returns the first answer; the same key with another body is a 422',
  }),
});
