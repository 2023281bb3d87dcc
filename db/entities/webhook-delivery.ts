import { EntitySchema } from '@mikro-orm/core';

export type DeliveryStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

/** One event on its way to one endpoint: attempted on the schedule until it succeeds or the schedule ends. */
export class WebhookDelivery {
  id!: string;
  tenantId!: string;
  endpointId!: string;
  eventId!: string;
  eventType!: string;
  status: DeliveryStatus = 'PENDING';
  attempts = 0;
  /** A delivery sent again (replayed or recovered) names the one it repeats. */
  replayOf?: string | null;
  nextAttemptAt?: Date | null;
  /** Null until its workflow is known to run; the dispatcher starts those left null. */
  startedAt?: Date | null;
  finishedAt?: Date | null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const WebhookDeliverySchema = new EntitySchema<WebhookDelivery>({
  class: WebhookDelivery,
  tableName: 'webhook_delivery',
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'] },
    { properties: ['endpointId', 'status', 'createdAt'] },
    {
      name: 'webhook_delivery_not_started_index',
      expression:
        'CREATE INDEX webhook_delivery_not_started_index ON public.webhook_delivery USING btree (created_at) WHERE (started_at IS NULL)',
    },
    // The backlog gauge (webhooks/delivery-gauges.ts) counts only what is still being tried.
    {
      name: 'webhook_delivery_pending_index',
      expression:
        "CREATE INDEX webhook_delivery_pending_index ON public.webhook_delivery USING btree (created_at) WHERE ((status)::text = 'PENDING'::text)",
    },
    // The dispatcher's look for deliveries whose run stopped (webhooks/dispatcher.ts `reviveStalled`).
    {
      name: 'webhook_delivery_stalled_index',
      expression:
        "CREATE INDEX webhook_delivery_stalled_index ON public.webhook_delivery USING btree (COALESCE(next_attempt_at, started_at), id) WHERE (((status)::text = 'PENDING'::text) AND (started_at IS NOT NULL))",
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    endpointId: {
      kind: 'm:1',
      entity: 'WebhookEndpoint',
      mapToPk: true,
      fieldName: 'endpoint_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    eventId: {
      kind: 'm:1',
      entity: 'OrderEvent',
      mapToPk: true,
      fieldName: 'event_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    eventType: { type: 'string', length: 40 },
    status: { type: 'string', length: 16 },
    attempts: { type: 'integer' },
    replayOf: { type: 'uuid', nullable: true },
    nextAttemptAt: { type: 'datetime', nullable: true },
    startedAt: { type: 'datetime', nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
