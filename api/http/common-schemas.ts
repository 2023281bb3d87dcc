import { z } from './zod.js';
import { countryCodes, isCountryCode } from '../../domain/country.js';
import { isPayableCurrency, payableCurrencies } from '../../domain/currency.js';
import { isScheduleYear, parseScheduleDate, SCHEDULE_DATE_PATTERN } from '../../domain/dates.js';
import { MAX_AMOUNT_MINOR } from '../../domain/money.js';
import { isDotSegment, REF_PATTERN } from '../../domain/refs.js';
import { holdsSecretKey, SECRET_KEY_NOT_ALLOWED } from '../../domain/secret-key.js';

export const RefSchema = z
  .string()
  .regex(REF_PATTERN, { error: 'must be 1–50 characters of letters, digits, "-", "_" or "."' })
  .refine((ref) => !isDotSegment(ref), { error: 'must not be "." or "..", which no address can hold' })
  .openapi({ example: 'ORD-2027-0001', description: 'Not "." or "..", which no address can hold' });

/** No secret key in free text (domain/secret-key.ts). */
const SECRET_KEY_REFUSED = { error: SECRET_KEY_NOT_ALLOWED.message, params: { code: SECRET_KEY_NOT_ALLOWED.code } };
const withoutSecretKey = <T extends z.ZodString>(text: T) => text.refine((t) => !holdsSecretKey(t), SECRET_KEY_REFUSED);

/**
 * Free text such as a name: at most `max` characters as sent (the limit the OpenAPI document
 * states), then trimmed, not blank, and holding no secret key.
 */
export const TextSchema = (max: number) => withoutSecretKey(z.string().max(max).trim().min(1));

export const CurrencySchema = z
  .string()
  .refine((v) => /^[A-Z]{3}$/.test(v) && isPayableCurrency(v), {
    error: 'must be the ISO 4217 code of a currency money can be paid in, such as EUR',
    params: { code: 'invalid_currency' },
  })
  .openapi({
    example: 'EUR',
    description: 'ISO 4217 alpha-3; funds codes, metals and units of account (XAU, XDR, USN…) are refused',
    enum: payableCurrencies(),
  });

export const CountrySchema = z
  .string()
  .refine(isCountryCode, {
    error: 'must be an ISO 3166-1 alpha-2 country code such as GB',
    params: { code: 'invalid_country' },
  })
  .openapi({ example: 'GB', description: 'ISO 3166-1 alpha-2', enum: countryCodes() });

export const AmountSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,17})(\.\d{1,3})?$/, { error: 'must be a positive decimal string such as "125.50"' })
  .openapi({
    example: '125.50',
    description: `Decimal string with at most the currency's minor-unit digits; at most ${MAX_AMOUNT_MINOR} minor units`,
  });

export const ScheduleDateSchema = z
  .string()
  .max(40)
  .refine((v) => parseScheduleDate(v) !== undefined, {
    error:
      'must be an ISO 8601 date (2027-01-31) or date-time with offset (2027-01-31T09:00:00Z) in the years 2000–2199',
    params: { code: 'invalid_date' },
  })
  .openapi({
    example: '2027-01-31',
    pattern: SCHEDULE_DATE_PATTERN,
  });

/** A point in time in a query (`since`, `createdFrom`…): ISO 8601 with offset, in the years 2000–2199. */
export const TimestampQuerySchema = z.iso
  .datetime({ offset: true })
  // zod runs this after a failed format too: a time that is no time is told so once, not also out of range.
  .refine(
    (v) => {
      const at = new Date(v);
      return Number.isNaN(at.getTime()) || isScheduleYear(at);
    },
    {
      error: 'must be in the years 2000–2199',
      params: { code: 'out_of_range' },
    },
  );

export const MetadataSchema = z
  .record(
    z.string().min(1).max(40, { error: 'metadata keys are at most 40 characters' }),
    withoutSecretKey(z.string().max(500, { error: 'metadata values are at most 500 characters' })),
  )
  .refine((m) => Object.keys(m).length <= 50, {
    error: 'metadata has at most 50 keys',
    params: { code: 'too_many_keys' },
  })
  // Named by the metadata, not by the key: the key is what must not be repeated.
  .refine((m) => !Object.keys(m).some(holdsSecretKey), SECRET_KEY_REFUSED)
  .openapi({ example: { policy: 'P-123' } });

export const PageQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(25),
    cursor: z.string().max(200).optional().openapi({ description: 'nextCursor of the previous page' }),
  })
  .strict();

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

export const RequiredIdempotencyHeaderSchema = z.object({
  'idempotency-key': z.string().min(1).max(255).openapi({
    description:
      'Required: same key and body within 24 h returns the first answer; the same key with another body is a 422',
  }),
});

export const IdempotencyHeaderSchema = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().openapi({
    description: 'Same key and body within 24 h returns the first answer; the same key with another body is a 422',
  }),
});

/**
 * A change (a PATCH) that names no field: a client that lost its fields, not a change of nothing,
 * which would still be answered, audited and stamped as one.
 */
export function namingSomeField<T extends z.ZodType<object>>(schema: T) {
  return schema.refine((body) => Object.keys(body).length > 0, {
    error: 'name at least one field to change',
    params: { code: 'empty_amendment' },
  });
}
