// An order's rows: the order and its instructions, which refer to each other.
import {
  BigIntType,
  Collection,
  EntitySchema,
  type EntitySchemaMetadata,
  type EntitySchemaProperty,
} from '@mikro-orm/core';
import { INSTRUCTION_COLUMNS, INSTRUCTION_FIELDS, type Column, type InstructionRow } from '../../domain/instruction.js';
import type { InstructionStatus, OrderStatus } from '../../domain/instruction-status.js';

export class PaymentOrder {
  id!: string;
  tenantId!: string;
  orderRef!: string;
  customerRef?: string | null;
  metadata: Record<string, string> = {};
  status: OrderStatus = 'ACTIVE';
  /** The tenant's dunning schedule when the order was taken, so a restarted workflow gets the same one. */
  dunningDelaysMs?: number[] | null;
  /** The tenant's returns policy and arrears expiry when the order was taken (null: the defaults). */
  returnsPolicy?: 'RECOLLECT' | 'FAIL' | null;
  arrearsExpiryDays?: number | null;
  /**
   * Until when the ended order's workflow stays open for refunds, returns and retries (see the
   * projection's `openUntil`); null while it runs, when nothing more can come, and for orders
   * projected before it was kept.
   */
  openUntil?: Date | null;
  /** Version of the last workflow snapshot projected here (a bigint, as a string); older snapshots are ignored. */
  projectionVersion = '0';
  /** Null until the workflow is known to exist; the reconciler starts workflows for rows left null. */
  workflowStartedAt?: Date | null;
  /** Until when a worker's reconciler holds it, starting it or after its start failed; null when never claimed or let go (a started order keeps its last). */
  startClaimedUntil?: Date | null;
  /**
   * A hash of the request that created it (orders/order-plans.ts `orderRequestHash`): a batch sending
   * its orderRef again is told whether it is this order or another. Null for orders from before it.
   */
  requestHash?: string | null;
  createdAt: Date = new Date();
  /**
   * When it was stored, or a projection last wrote it: when its workflow was last known alive, which
   * the order service reads against Temporal's retention (`deletedByRetention`). Native updates of
   * other columns leave it.
   */
  updatedAt: Date = new Date();
  instructions = new Collection<PaymentInstruction>(this);
}

/** An order ref is unique per tenant: the constraint a second order under the same ref breaks. */
export const ORDER_REF_UNIQUE = 'payment_order_tenant_order_ref_unique';

export const PaymentOrderSchema = new EntitySchema<PaymentOrder>({
  class: PaymentOrder,
  tableName: 'payment_order',
  uniques: [{ properties: ['tenantId', 'orderRef'], name: ORDER_REF_UNIQUE }],
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
    status: { type: 'string', length: 32 },
    dunningDelaysMs: { type: 'json', nullable: true },
    returnsPolicy: { type: 'string', length: 16, nullable: true },
    arrearsExpiryDays: { type: 'integer', nullable: true },
    openUntil: { type: 'datetime', nullable: true },
    projectionVersion: { type: new BigIntType('string') },
    workflowStartedAt: { type: 'datetime', nullable: true },
    startClaimedUntil: { type: 'datetime', nullable: true },
    requestHash: { type: 'string', length: 64, nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
    instructions: { kind: '1:m', entity: 'PaymentInstruction', mappedBy: 'order', orderBy: { position: 'asc' } },
  },
});

/**
 * A payment instruction's row in the read model. Its instruction fields (and their columns) are
 * declared once, in domain/instruction.ts; this entity adds what ties the row to its order and tenant.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the class gets its instruction fields from the interface of the same name
export interface PaymentInstruction extends InstructionRow {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- as above
export class PaymentInstruction {
  // Their columns' defaults (MikroORM infers them from these initialisers, as the migrations have them).
  status: InstructionStatus = 'PENDING';
  attempts = 0;
  settledAmountMinor = 0n;
  refundedAmountMinor = 0n;
  returnedAmountMinor = 0n;
  order!: PaymentOrder;
  tenantId!: string;
  metadata: Record<string, string> = {};
  /** Version of the last projection written here (a bigint, as a string); older ones are ignored. */
  projectionVersion = '0';
}

function propertyOf({ column, type, length, nullable }: Column): EntitySchemaProperty<unknown, PaymentInstruction> {
  const mapped = {
    uuid: { type: 'uuid' },
    integer: { type: 'integer' },
    text: { type: 'string', length },
    bigint: { type: new BigIntType('bigint') },
    timestamptz: { type: 'datetime' },
    jsonb: { type: 'json' },
  }[type];
  return { ...mapped, fieldName: column, ...(nullable ? { nullable: true } : {}) };
}

export const PaymentInstructionSchema = new EntitySchema<PaymentInstruction>({
  class: PaymentInstruction,
  tableName: 'payment_instruction',
  uniques: [{ properties: ['order', 'instructionRef'], name: 'payment_instruction_order_ref_unique' }],
  indexes: [
    // Instruction search (orders/instruction-search.ts): each filter's page is one range, ending in its order.
    { properties: ['tenantId', 'dueAt', 'instructionId'] },
    { properties: ['tenantId', 'status', 'dueAt', 'instructionId'] },
    { properties: ['tenantId', 'customerRef', 'dueAt', 'instructionId'] },
    { properties: ['tenantId', 'settledAt', 'instructionId'] },
    // The due-soon and late gauges, across tenants: only what is still to be paid.
    {
      name: 'payment_instruction_unpaid_index',
      expression:
        "CREATE INDEX payment_instruction_unpaid_index ON public.payment_instruction USING btree (status, COALESCE(charge_at, due_at)) WHERE ((status)::text = ANY (ARRAY[('PENDING'::character varying)::text, ('OPEN'::character varying)::text, ('LATE'::character varying)::text]))",
    },
    // What uninstalling an app, or deleting a scheme, must check first: live instructions using it.
    { properties: ['tenantId', 'appId', 'status'] },
    { properties: ['tenantId', 'schemeId', 'status'] },
    // A payment by the provider's reference: resolving one, and reconciliation's side of a ledger.
    { properties: ['tenantId', 'appId', 'providerRef'] },
    {
      name: 'payment_instruction_returned_ref_index',
      expression:
        'CREATE INDEX payment_instruction_returned_ref_index ON public.payment_instruction USING btree (tenant_id, app_id, returned_ref) WHERE (returned_ref IS NOT NULL)',
    },
  ],
  properties: {
    ...Object.fromEntries(INSTRUCTION_FIELDS.map((field) => [field, propertyOf(INSTRUCTION_COLUMNS[field])])),
    instructionId: { ...propertyOf(INSTRUCTION_COLUMNS.instructionId), primary: true },
    order: { kind: 'm:1', entity: 'PaymentOrder', deleteRule: 'cascade' },
    tenantId: { type: 'uuid' },
    metadata: { type: 'json' },
    projectionVersion: { type: new BigIntType('string') },
  } as unknown as EntitySchemaMetadata<PaymentInstruction>['properties'],
});
