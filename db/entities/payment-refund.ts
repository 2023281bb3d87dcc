import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { RefundStatus } from '../../domain/refund.js';

/**
 * A refund's row in the read model (domain/refund.ts declares it), written only by its order's
 * projection, idempotent by version like the instructions' rows.
 */
export class PaymentRefund {
  refundId!: string;
  tenantId!: string;
  orderId!: string;
  instructionId!: string;
  instructionRef!: string;
  number!: number;
  amountMinor!: bigint;
  currency!: string;
  reason?: string | null;
  paymentRef!: string;
  /**
   * Null for a refund asked for before its app was kept, until its instruction is paid or amended to
   * go through another while it is under way: it goes through its instruction's app meanwhile.
   */
  appId?: string | null;
  status: RefundStatus = 'PENDING';
  providerRef?: string | null;
  failureCode?: string | null;
  createdAt!: Date;
  succeededAt?: Date | null;
  failedAt?: Date | null;
  projectionVersion = '0';
}

export const PaymentRefundSchema = new EntitySchema<PaymentRefund>({
  class: PaymentRefund,
  tableName: 'payment_refund',
  uniques: [{ properties: ['instructionId', 'number'], name: 'payment_refund_instruction_number_unique' }],
  indexes: [{ properties: ['tenantId', 'instructionId', 'createdAt'] }, { properties: ['tenantId', 'providerRef'] }],
  properties: {
    refundId: { type: 'uuid', primary: true, fieldName: 'id' },
    tenantId: { type: 'uuid' },
    orderId: { type: 'uuid' },
    instructionId: { type: 'uuid' },
    instructionRef: { type: 'string', length: 50 },
    number: { type: 'integer' },
    amountMinor: { type: new BigIntType('bigint') },
    currency: { type: 'string', length: 3 },
    reason: { type: 'string', length: 200, nullable: true },
    paymentRef: { type: 'string', length: 128 },
    appId: { type: 'string', length: 64, nullable: true },
    status: { type: 'string', length: 16 },
    providerRef: { type: 'string', length: 128, nullable: true },
    failureCode: { type: 'string', length: 64, nullable: true },
    createdAt: { type: 'datetime' },
    succeededAt: { type: 'datetime', nullable: true },
    failedAt: { type: 'datetime', nullable: true },
    projectionVersion: { type: new BigIntType('string') },
  },
});
