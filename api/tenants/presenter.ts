import type { Tenant } from '../../db/entities/index.js';
import { DEFAULT_ARREARS_EXPIRY_DAYS } from '../../domain/dunning.js';

export function presentTenant(tenant: Tenant) {
  return {
    tenantId: tenant.id,
    accountId: tenant.accountId,
    name: tenant.name,
    timeZone: tenant.timeZone ?? null,
    dunning: tenant.dunningRetryDelaysDays ? { retryDelaysDays: tenant.dunningRetryDelaysDays } : null,
    returnsPolicy: tenant.returnsPolicy ?? 'RECOLLECT',
    arrearsExpiryDays: tenant.arrearsExpiryDays ?? DEFAULT_ARREARS_EXPIRY_DAYS,
    businessDayRule: tenant.businessDayRule ?? 'FOLLOWING',
    createdAt: tenant.createdAt.toISOString(),
    updatedAt: tenant.updatedAt.toISOString(),
  };
}
