import type { SecurityKey } from '../../db/entities/index.js';

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
