import { PageQuerySchema, TimestampQuerySchema } from '../http/common-schemas.js';
import { z } from '../http/zod.js';

export const AuditQuerySchema = PageQuerySchema.extend({
  since: TimestampQuerySchema.optional().openapi({ description: 'Only entries at or after this time' }),
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

export const AuditListSchema = z
  .object({ items: z.array(AuditEntrySchema), nextCursor: z.string().nullable() })
  .openapi('AuditList');
