import { EntitySchema } from '@mikro-orm/core';

/**
 * Where a payment's (or refund's) idempotency key was first sent: a digest of its app's key scope
 * (domain/key-scope.ts), kept at the first send, compared at every later send or look-up under the
 * key. Rows unused for KEY_SCOPE_KEPT_DAYS are deleted by housekeeping.
 */
export class ProviderKeyScope {
  idempotencyKey!: string;
  tenantId!: string;
  appId!: string;
  scopeDigest!: string;
  usedAt: Date = new Date();
}

export const ProviderKeyScopeSchema = new EntitySchema<ProviderKeyScope>({
  class: ProviderKeyScope,
  tableName: 'provider_key_scope',
  indexes: [{ properties: ['usedAt'] }],
  properties: {
    idempotencyKey: { type: 'text', primary: true },
    tenantId: { type: 'uuid' },
    appId: { type: 'string', length: 64 },
    scopeDigest: { type: 'string', length: 64 },
    usedAt: { type: 'datetime' },
  },
});
