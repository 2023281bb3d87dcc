import type { AuditEntry } from '../../db/entities/index.js';

export function presentAuditEntry(entry: AuditEntry) {
  return {
    auditId: entry.id,
    accountId: entry.accountId,
    tenantId: entry.tenantId ?? null,
    actorKey: entry.actorKey,
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId,
    details: entry.details,
    createdAt: entry.createdAt.toISOString(),
  };
}
