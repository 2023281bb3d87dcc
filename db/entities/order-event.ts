import { EntitySchema } from '@mikro-orm/core';

/**
 * Something that happened to an order or an instruction, recorded once: `eventKey` names it
 * (order, instruction, type and its place in the instruction's history), so a projection that is
 * retried or repeated records nothing twice. Its id is the `webhook-id` of every delivery of it.
 */
export class OrderEvent {
  id!: string;
  tenantId!: string;
  eventKey!: string;
  type!: string;
  /** Null for the tenant's own events (a webhook endpoint disabled, a delivery given up). */
  orderRef?: string | null;
  instructionRef?: string | null;
  occurredAt!: Date;
  /** The body every endpoint receives, byte for byte (the signature covers it). */
  payload!: string;
  createdAt: Date = new Date();
}

export const OrderEventSchema = new EntitySchema<OrderEvent>({
  class: OrderEvent,
  tableName: 'order_event',
  uniques: [{ properties: ['tenantId', 'eventKey'], name: 'order_event_tenant_key_unique' }],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'] },
    { properties: ['tenantId', 'type', 'createdAt', 'id'] },
    { properties: ['tenantId', 'orderRef', 'createdAt', 'id'] },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    eventKey: { type: 'string', length: 200 },
    type: { type: 'string', length: 40 },
    orderRef: { type: 'string', length: 50, nullable: true },
    instructionRef: { type: 'string', length: 50, nullable: true },
    occurredAt: { type: 'datetime' },
    payload: { type: 'text' },
    createdAt: { type: 'datetime' },
  },
});
