import type { Tenant } from '../../db/entities/index.js';

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
