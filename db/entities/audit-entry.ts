import { EntitySchema } from '@mikro-orm/core';

/**
 * One change: who (the key), what, when. Written in the change's own transaction; an admin's
 * resolution of an unknown outcome, on its own before it is sent, then marked with what came of it.
 */
export class AuditEntry {
  id!: string;
  accountId!: string;
  tenantId?: string | null;
  actorKey!: string;
  action!: string;
  targetType!: string;
  targetId!: string;
  details: Record<string, unknown> = {};
  createdAt: Date = new Date();
}

export const AuditEntrySchema = new EntitySchema<AuditEntry>({
  class: AuditEntry,
  tableName: 'audit_entry',
  // The list's page order (created_at, id) ends the index: a page is one index range.
  indexes: [{ properties: ['accountId', 'createdAt', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    accountId: { type: 'uuid' },
    tenantId: { type: 'uuid', nullable: true },
    actorKey: { type: 'string', length: 64 },
    action: { type: 'string', length: 64 },
    targetType: { type: 'string', length: 32 },
    targetId: { type: 'string', length: 100 },
    details: { type: 'json' },
    createdAt: { type: 'datetime' },
  },
});
