import { BUSINESS_DAY_RULES } from '../../domain/business-days.js';
import { isTimeZone } from '../../domain/dates.js';
import { namingSomeField, TextSchema } from '../http/common-schemas.js';
import { z } from '../http/zod.js';

const DunningSchema = z
  .object({
    retryDelaysDays: z
      .array(z.number().int().min(1).max(60))
      .max(10)
      .openapi({
        description: 'Days to wait before each retry of a declined collection; [] never retries',
        example: [1, 3, 5],
      }),
  })
  .strict();

const TimeZoneSchema = z
  .string()
  .max(64)
  .refine(isTimeZone, {
    error: 'must be an IANA time zone such as Europe/London',
    params: { code: 'invalid_time_zone' },
  })
  .openapi({ example: 'Europe/London' });

const ReturnsPolicySchema = z.enum(['RECOLLECT', 'FAIL']).openapi({
  description:
    'What a payment taken back after it settled does: RECOLLECT (default) collects it again on the dunning schedule when its return ' +
    'code allows (insufficient_funds, refer_to_payer; never a chargeback, nor a return signed only with a callback secret replaced since), ' +
    'FAIL fails it. Orders keep the policy they were taken with.',
});

const ArrearsExpiryDaysSchema = z
  .number()
  .int()
  .min(1)
  .max(365)
  .openapi({
    description:
      'Days a LATE instruction with nothing planned waits before it fails `expired`, and a FAILED one may be retried (default 30). ' +
      'Orders keep the value they were taken with.',
  });

const BusinessDayRuleSchema = z.enum(BUSINESS_DAY_RULES).openapi({
  description:
    'How a due date on a weekend or a public holiday of the instruction’s country moves to the day it is charged: ' +
    'FOLLOWING (default) the next business day, MODIFIED_FOLLOWING the next unless that is in the next month (then the previous), ' +
    'PRECEDING the previous, NONE not at all. Never before the instruction opens. Applies to instructions taken or re-dated after the change.',
});

export const CreateTenantSchema = z
  .object({
    name: TextSchema(200),
    timeZone: TimeZoneSchema.optional(),
    dunning: DunningSchema.optional(),
    returnsPolicy: ReturnsPolicySchema.optional(),
    arrearsExpiryDays: ArrearsExpiryDaysSchema.optional(),
    businessDayRule: BusinessDayRuleSchema.optional(),
  })
  .strict()
  .openapi('CreateTenant');

export const UpdateTenantSchema = namingSomeField(
  z
    .object({
      name: TextSchema(200).optional(),
      timeZone: TimeZoneSchema.nullable().optional(),
      dunning: DunningSchema.nullable().optional(),
      returnsPolicy: ReturnsPolicySchema.nullable().optional(),
      arrearsExpiryDays: ArrearsExpiryDaysSchema.nullable().optional(),
      businessDayRule: BusinessDayRuleSchema.nullable().optional(),
    })
    .strict(),
).openapi('UpdateTenant');

export const TenantSchema = z
  .object({
    tenantId: z.uuid(),
    accountId: z.uuid(),
    name: z.string(),
    timeZone: z.string().nullable(),
    dunning: DunningSchema.nullable(),
    returnsPolicy: ReturnsPolicySchema,
    arrearsExpiryDays: z.number().int(),
    businessDayRule: BusinessDayRuleSchema,
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('Tenant');

export const TenantListSchema = z
  .object({ items: z.array(TenantSchema), nextCursor: z.string().nullable() })
  .openapi('TenantList');

export const TenantIdParamsSchema = z.object({ tenantId: z.uuid() });
