import { EntitySchema } from '@mikro-orm/core';

/**
 * A public/private key pair. The private key is kept encrypted (AES-256-GCM under the master key)
 * because the server needs it to check HMAC signatures; it is shown in clear once, at creation.
 */
export class SecurityKey {
  publicKey!: string;
  accountId!: string;
  /** Null for an account key. */
  tenantId?: string | null;
  name!: string;
  roles!: string[];
  privateKeyCiphertext!: string;
  createdBy?: string | null;
  createdAt: Date = new Date();
}

export const SecurityKeySchema = new EntitySchema<SecurityKey>({
  class: SecurityKey,
  tableName: 'security_key',
  // The list's page order (created_at, public_key) ends the index: a page is one index range.
  indexes: [{ properties: ['accountId', 'tenantId', 'createdAt', 'publicKey'] }],
  properties: {
    publicKey: { type: 'string', length: 64, primary: true },
    accountId: { kind: 'm:1', entity: 'Account', mapToPk: true, fieldName: 'account_id', deleteRule: 'cascade', updateRule: 'no action', deferMode: 'deferred' },
    tenantId: { kind: 'm:1', entity: 'Tenant', mapToPk: true, fieldName: 'tenant_id', nullable: true, deleteRule: 'cascade', updateRule: 'no action', deferMode: 'deferred' },
    name: { type: 'string', length: 200 },
    roles: { type: 'json' },
    privateKeyCiphertext: { type: 'text' },
    createdBy: { type: 'string', length: 64, nullable: true },
    createdAt: { type: 'datetime' },
  },
});
