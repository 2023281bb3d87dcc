import { ACCOUNT_ROLES, TENANT_ROLES } from '../../domain/roles.js';
import { TextSchema } from '../http/common-schemas.js';
import { z } from '../http/zod.js';
import { TenantIdParamsSchema } from '../tenants/schemas.js';

export const CreateAccountKeySchema = z
  .object({ name: TextSchema(200), roles: z.array(z.enum(ACCOUNT_ROLES)).min(1).max(ACCOUNT_ROLES.length) })
  .strict()
  .openapi('CreateAccountKey');

export const CreateTenantKeySchema = z
  .object({ name: TextSchema(200), roles: z.array(z.enum(TENANT_ROLES)).min(1).max(TENANT_ROLES.length) })
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
