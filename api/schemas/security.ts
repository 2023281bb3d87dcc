import { z } from '../zod.js';
import { isTimeZone } from '../../domain/dates.js';
import { ACCOUNT_ROLES, TENANT_ROLES } from '../../domain/roles.js';

export const AccessTokenSchema = z
  .object({
    accessToken: z.string().openapi({ description: 'Send as `Authorization: Bearer {accessToken}`' }),
    expires: z.number().int().openapi({ description: 'Expiry, epoch milliseconds' }),
  })
  .openapi('AccessToken');

export const HmacHeaderSchema = z.object({
  authorization: z.string().openapi({
    description: 'Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}; see the README for the algorithm',
    example: 'Hmac 6c2b1f0e-…:5f1b…:1767225600:3q2+7w==',
  }),
});

const DunningSchema = z
  .object({
    retryDelaysDays: z
      .array(z.number().int().min(1).max(60))
      .max(10)
      .openapi({ description: 'Days to wait before each retry of a declined collection; [] never retries', example: [1, 3, 5] }),
  })
  .strict();

const TimeZoneSchema = z
  .string()
  .refine(isTimeZone, { error: 'must be an IANA time zone such as Europe/London', params: { code: 'invalid_time_zone' } })
  .openapi({ example: 'Europe/London' });

export const CreateTenantSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    timeZone: TimeZoneSchema.optional(),
    dunning: DunningSchema.optional(),
  })
  .strict()
  .openapi('CreateTenant');

export const UpdateTenantSchema = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    timeZone: TimeZoneSchema.nullable().optional(),
    dunning: DunningSchema.nullable().optional(),
  })
  .strict()
  .openapi('UpdateTenant');

export const TenantSchema = z
  .object({
    tenantId: z.uuid(),
    accountId: z.uuid(),
    name: z.string(),
    timeZone: z.string().nullable(),
    dunning: DunningSchema.nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('Tenant');

export const TenantListSchema = z.object({ items: z.array(TenantSchema), nextCursor: z.string().nullable() }).openapi('TenantList');

export const TenantIdParamsSchema = z.object({ tenantId: z.uuid() });

export const CreateAccountKeySchema = z
  .object({ name: z.string().trim().min(1).max(200), roles: z.array(z.enum(ACCOUNT_ROLES)).min(1) })
  .strict()
  .openapi('CreateAccountKey');

export const CreateTenantKeySchema = z
  .object({ name: z.string().trim().min(1).max(200), roles: z.array(z.enum(TENANT_ROLES)).min(1) })
  .strict()
  .openapi('CreateTenantKey');

export const SecurityKeySchema = z
  .object({
    publicKey: z.string(),
    name: z.string(),
    roles: z.array(z.string()),
    accountId: z.uuid(),
    tenantId: z.uuid().nullable(),
    createdAt: z.iso.datetime(),
  })
  .openapi('SecurityKey');

export const CreatedSecurityKeySchema = SecurityKeySchema.extend({
  privateKey: z.string().openapi({ description: 'Shown once, now; it cannot be read again' }),
}).openapi('CreatedSecurityKey');

export const SecurityKeyListSchema = z
  .object({ items: z.array(SecurityKeySchema), nextCursor: z.string().nullable() })
  .openapi('SecurityKeyList');

export const PublicKeyParamsSchema = z.object({ publicKey: z.uuid() });
export const TenantKeyParamsSchema = TenantIdParamsSchema.extend(PublicKeyParamsSchema.shape);

export const PageQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(25),
    cursor: z.string().optional(),
  })
  .strict();

export const AuditQuerySchema = PageQuerySchema.extend({
  since: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Only entries at or after this time' }),
}).strict();

export const AuditEntrySchema = z
  .object({
    auditId: z.uuid(),
    accountId: z.uuid(),
    tenantId: z.uuid().nullable(),
    actorKey: z.string(),
    action: z.string().openapi({ example: 'tenant.create' }),
    targetType: z.string(),
    targetId: z.string(),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
  })
  .openapi('AuditEntry');

export const AuditListSchema = z.object({ items: z.array(AuditEntrySchema), nextCursor: z.string().nullable() }).openapi('AuditList');
