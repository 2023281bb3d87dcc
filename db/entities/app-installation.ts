import { EntitySchema } from '@mikro-orm/core';

/** A tenant's installation of a marketplace app: at most one per app and tenant. */
export class AppInstallation {
  id!: string;
  tenantId!: string;
  appId!: string;
  /** The configuration's plain fields; secret fields are in secretsCiphertext only. */
  configuration: Record<string, unknown> = {};
  /** The secret fields as one JSON object, sealed under the master key; null when none is set. */
  secretsCiphertext?: string | null;
  /**
   * The callback secrets replaced and still in time (domain/retired-secrets.ts) as one JSON list,
   * sealed under the master key; null when none.
   */
  retiredSecretsCiphertext?: string | null;
  /** Which secret fields are set (names only), so answers can say so without opening them. */
  secretsSet: string[] = [];
  /** When it was installed. */
  createdAt: Date = new Date();
  /**
   * When its key scope (the catalog's `keyScope`: where its payments' keys are known, and its ledger
   * kept) last changed; null if never since it was installed. Reconciliation runs no day before it.
   */
  keyScopeChangedAt?: Date | null;
  updatedAt: Date = new Date();
}

export const AppInstallationSchema = new EntitySchema<AppInstallation>({
  class: AppInstallation,
  tableName: 'app_installation',
  uniques: [{ properties: ['tenantId', 'appId'], name: 'app_installation_tenant_app_unique' }],
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: {
      kind: 'm:1',
      entity: 'Tenant',
      mapToPk: true,
      fieldName: 'tenant_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    appId: { type: 'string', length: 64 },
    configuration: { type: 'json' },
    secretsCiphertext: { type: 'text', nullable: true },
    retiredSecretsCiphertext: { type: 'text', nullable: true },
    secretsSet: { type: 'json' },
    createdAt: { type: 'datetime' },
    keyScopeChangedAt: { type: 'datetime', nullable: true },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
