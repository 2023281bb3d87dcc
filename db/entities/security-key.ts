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
  // The lists' page order (created_at, public_key) ends each index: a page is one index range. Account
  // keys need a partial index of their own: PostgreSQL does not read `tenant_id is null` as fixing the order.
  indexes: [
    { properties: ['accountId', 'tenantId', 'createdAt', 'publicKey'] },
    {
      name: 'security_key_account_keys_page_index',
      expression:
        'CREATE INDEX security_key_account_keys_page_index ON public.security_key USING btree (account_id, created_at, public_key) WHERE (tenant_id IS NULL)',
    },
  ],
  properties: {
    publicKey: { type: 'string', length: 64, primary: true },
    accountId: {
      kind: 'm:1',
      entity: 'Account',
      mapToPk: true,
      fieldName: 'account_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
      deferMode: 'deferred',
    },
    tenantId: {
      kind: 'm:1',
      entity: 'Tenant',
      mapToPk: true,
      fieldName: 'tenant_id',
      nullable: true,
      deleteRule: 'cascade',
      updateRule: 'no action',
      deferMode: 'deferred',
    },
    name: { type: 'string', length: 200 },
    roles: { type: 'json' },
    privateKeyCiphertext: { type: 'text' },
    createdBy: { type: 'string', length: 64, nullable: true },
    createdAt: { type: 'datetime' },
  },
});
