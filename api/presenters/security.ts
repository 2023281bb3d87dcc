import type { AuditEntry, SecurityKey, Tenant } from '../../db/entities/index.js';

export function presentTenant(tenant: Tenant) {
  return {
    tenantId: tenant.id,
    accountId: tenant.accountId,
    name: tenant.name,
    timeZone: tenant.timeZone ?? null,
    dunning: tenant.dunningRetryDelaysDays ? { retryDelaysDays: tenant.dunningRetryDelaysDays } : null,
    createdAt: tenant.createdAt.toISOString(),
    updatedAt: tenant.updatedAt.toISOString(),
  };
}

/** Never includes the private key; the create route adds it once, itself. */
export function presentKey(key: SecurityKey) {
  return {
    publicKey: key.publicKey,
    name: key.name,
    roles: key.roles,
    accountId: key.accountId,
    tenantId: key.tenantId ?? null,
    createdAt: key.createdAt.toISOString(),
  };
}

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
