import type { MikroORM } from '@mikro-orm/postgresql';
import { Tenant } from './entities/index.js';

/** More tenants than any worker sees between restarts: past it, the map starts again. */
const REMEMBERED = 10_000;

/**
 * Each tenant's account, for caps an account's tenants share (an account makes as many tenants as
 * it likes): read from the database once per tenant, since a tenant never changes account.
 */
export function tenantAccounts(orm: MikroORM): (tenantId: string) => Promise<string> {
  const accounts = new Map<string, string>();
  return async (tenantId) => {
    let accountId = accounts.get(tenantId);
    if (accountId === undefined) {
      accountId = (await orm.em.fork().findOneOrFail(Tenant, { id: tenantId }, { fields: ['accountId'] })).accountId;
      if (accounts.size >= REMEMBERED) accounts.clear();
      accounts.set(tenantId, accountId);
    }
    return accountId;
  };
}
