import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { InstructionStatus } from '../../domain/instruction-status.js';
import type { Direction } from '../../domain/order.js';
import type { PaymentMethod, ResolvedOption } from '../../domain/scheme.js';
import type { PaymentOrder } from './payment-order.js';

export class PaymentInstruction {
  id!: string;
  order!: PaymentOrder;
  tenantId!: string;
  /** Position in the order as submitted, so reads list instructions the way the caller sent them. */
  position!: number;
  instructionRef!: string;
  direction!: Direction;
  /** Integer minor units of `currency`; never a float. */
  amountMinor!: bigint;
  currency!: string;
  country!: string;
  openAt!: Date;
  dueAt!: Date;
  customerRef?: string | null;
  financialInstrumentId?: string | null;
  metadata: Record<string, string> = {};
  /** The scheme it was resolved with, and that scheme's version at the time. */
  schemeId?: string | null;
  schemeVersion?: number | null;
  /** The options the scheme offered for this payment, best first, and the one chosen to pay with. */
  resolvedOptions?: ResolvedOption[] | null;
  paymentMethod?: PaymentMethod | null;
  status: InstructionStatus = 'PENDING';
  attempts = 0;
  appId?: string | null;
  providerRef?: string | null;
  /** The code of a voucher paid out. */
  voucherCode?: string | null;
  failureCode?: string | null;
  nextActionAt?: Date | null;
  openedAt?: Date | null;
  processingAt?: Date | null;
  lateAt?: Date | null;
  settledAt?: Date | null;
  failedAt?: Date | null;
  cancelledAt?: Date | null;
  /** Version of the last projection written here (a bigint, as a string); older ones are ignored. */
  projectionVersion = '0';
}

export const PaymentInstructionSchema = new EntitySchema<PaymentInstruction>({
  class: PaymentInstruction,
  tableName: 'payment_instruction',
  uniques: [{ properties: ['order', 'instructionRef'], name: 'payment_instruction_order_ref_unique' }],
  indexes: [
    { properties: ['tenantId', 'status'] },
    // What uninstalling an app, or deleting a scheme, must check first: live instructions using it.
    { properties: ['tenantId', 'appId', 'status'] },
    { properties: ['tenantId', 'schemeId', 'status'] },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    order: { kind: 'm:1', entity: 'PaymentOrder', deleteRule: 'cascade' },
    tenantId: { type: 'uuid' },
    position: { type: 'integer' },
    instructionRef: { type: 'string', length: 50 },
    direction: { type: 'string', length: 6 },
    amountMinor: { type: new BigIntType('bigint') },
    currency: { type: 'string', length: 3 },
    country: { type: 'string', length: 2 },
    openAt: { type: 'datetime' },
    dueAt: { type: 'datetime' },
    customerRef: { type: 'string', length: 50, nullable: true },
    financialInstrumentId: { type: 'string', length: 100, nullable: true },
    metadata: { type: 'json' },
    schemeId: { type: 'uuid', nullable: true },
    schemeVersion: { type: 'integer', nullable: true },
    resolvedOptions: { type: 'json', nullable: true },
    paymentMethod: { type: 'string', length: 16, nullable: true },
    status: { type: 'string', length: 16 },
    attempts: { type: 'integer' },
    appId: { type: 'string', length: 64, nullable: true },
    providerRef: { type: 'string', length: 128, nullable: true },
    voucherCode: { type: 'string', length: 64, nullable: true },
    failureCode: { type: 'string', length: 64, nullable: true },
    nextActionAt: { type: 'datetime', nullable: true },
    openedAt: { type: 'datetime', nullable: true },
    processingAt: { type: 'datetime', nullable: true },
    lateAt: { type: 'datetime', nullable: true },
    settledAt: { type: 'datetime', nullable: true },
    failedAt: { type: 'datetime', nullable: true },
    cancelledAt: { type: 'datetime', nullable: true },
    projectionVersion: { type: new BigIntType('string') },
  },
});
