import { BigIntType, Collection, EntitySchema } from '@mikro-orm/core';
import type { OrderStatus } from '../../domain/instruction-status.js';
import type { PaymentInstruction } from './payment-instruction.js';

export class PaymentOrder {
  id!: string;
  tenantId!: string;
  orderRef!: string;
  customerRef?: string | null;
  metadata: Record<string, string> = {};
  status: OrderStatus = 'ACTIVE';
  /** The tenant's dunning schedule when the order was taken, so a restarted workflow gets the same one. */
  dunningDelaysMs?: number[] | null;
  /** Version of the last workflow snapshot projected here (a bigint, as a string); older snapshots are ignored. */
  projectionVersion = '0';
  /** Null until the workflow is known to exist; the reconciler starts workflows for rows left null. */
  workflowStartedAt?: Date | null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
  instructions = new Collection<PaymentInstruction>(this);
}

export const PaymentOrderSchema = new EntitySchema<PaymentOrder>({
  class: PaymentOrder,
  tableName: 'payment_order',
  uniques: [{ properties: ['tenantId', 'orderRef'], name: 'payment_order_tenant_order_ref_unique' }],
  indexes: [
    // One per list filter, each ending in the page order (created_at, id): a page is one index range.
    { properties: ['tenantId', 'createdAt', 'id'] },
    { properties: ['tenantId', 'status', 'createdAt', 'id'] },
    { properties: ['tenantId', 'customerRef', 'createdAt', 'id'] },
    // For the orphan-order reconciler's scan; written as PostgreSQL prints it so schema diffs match.
    {
      name: 'payment_order_workflow_not_started_index',
      expression:
        'CREATE INDEX payment_order_workflow_not_started_index ON public.payment_order USING btree (created_at) WHERE (workflow_started_at IS NULL)',
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    orderRef: { type: 'string', length: 50 },
    customerRef: { type: 'string', length: 50, nullable: true },
    metadata: { type: 'json' },
    status: { type: 'string', length: 16 },
    dunningDelaysMs: { type: 'json', nullable: true },
    projectionVersion: { type: new BigIntType('string') },
    workflowStartedAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
    instructions: { kind: '1:m', entity: 'PaymentInstruction', mappedBy: 'order', orderBy: { position: 'asc' } },
  },
});
