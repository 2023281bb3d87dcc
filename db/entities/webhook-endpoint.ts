import { EntitySchema } from '@mikro-orm/core';

/** Where a tenant wants its events sent, and the secret they are signed with. */
export class WebhookEndpoint {
  id!: string;
  tenantId!: string;
  url!: string;
  /** Event types sent here; empty means every type. */
  eventTypes: string[] = [];
  enabled = true;
  description?: string | null;
  /** `whsec_…`, sealed under the master key: shown when made or rotated, never again. */
  secretCiphertext!: string;
  /** The secret before the last rotation, still signing (beside the new one) until previousSecretExpiresAt. */
  previousSecretCiphertext?: string | null;
  previousSecretExpiresAt?: Date | null;
  /** Why the platform disabled it (410 Gone, failing for days), when it did. */
  disabledReason?: string | null;
  /** Since when every delivery here has failed; null after a success. */
  failingSince?: Date | null;
  /** When a try here last failed: a streak with no failure for longer than FAILING_STREAK_GAP_MS starts again. */
  lastFailedAt?: Date | null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const WebhookEndpointSchema = new EntitySchema<WebhookEndpoint>({
  class: WebhookEndpoint,
  tableName: 'webhook_endpoint',
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
    url: { type: 'string', length: 2000 },
    eventTypes: { type: 'json' },
    enabled: { type: 'boolean' },
    description: { type: 'string', length: 500, nullable: true },
    secretCiphertext: { type: 'text' },
    previousSecretCiphertext: { type: 'text', nullable: true },
    previousSecretExpiresAt: { type: 'datetime', nullable: true },
    disabledReason: { type: 'string', length: 500, nullable: true },
    failingSince: { type: 'datetime', nullable: true },
    lastFailedAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
