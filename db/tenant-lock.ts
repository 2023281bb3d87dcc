import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Holds the tenant's row until `em`'s transaction ends, so that requests counting what the tenant has
 * before adding one (its schemes, its webhook endpoints) go one after the other and cannot pass a cap
 * together. `for no key update`, not `for update`: rows inserted meanwhile that refer to the tenant
 * (its customers, keys, orders: a foreign key's share lock) are not held up.
 */
export async function lockTenantRow(em: EntityManager, tenantId: string): Promise<void> {
  await em
    .getConnection()
    .execute('select 1 from tenant where id = ? for no key update', [tenantId], 'all', em.getTransactionContext());
}
