import { EntitySchema } from '@mikro-orm/core';

/** One try of a delivery: what the endpoint answered (or why nothing came), how fast, and when the next try is. */
export class WebhookAttempt {
  id!: string;
  deliveryId!: string;
  tenantId!: string;
  attempt!: number;
  attemptedAt!: Date;
  statusCode?: number | null;
  latencyMs!: number;
  error?: string | null;
  nextAttemptAt?: Date | null;
}

export const WebhookAttemptSchema = new EntitySchema<WebhookAttempt>({
  class: WebhookAttempt,
  tableName: 'webhook_attempt',
  uniques: [{ properties: ['deliveryId', 'attempt'], name: 'webhook_attempt_delivery_attempt_unique' }],
  properties: {
    id: { type: 'uuid', primary: true },
    deliveryId: {
      kind: 'm:1',
      entity: 'WebhookDelivery',
      mapToPk: true,
      fieldName: 'delivery_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    tenantId: { type: 'uuid' },
    attempt: { type: 'integer' },
    attemptedAt: { type: 'datetime' },
    statusCode: { type: 'integer', nullable: true },
    latencyMs: { type: 'integer' },
    error: { type: 'string', length: 500, nullable: true },
    nextAttemptAt: { type: 'datetime', nullable: true },
  },
});
