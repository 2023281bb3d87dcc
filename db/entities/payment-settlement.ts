import { BigIntType, EntitySchema } from '@mikro-orm/core';

/**
 * One settlement of an instruction, as it happened: an instruction collected again after a return
 * or a chargeback has one for each payment that settled. Written only by its order's projection,
 * once per `instruction.settled` event (`eventKey`), so that the settlement export lists every
 * settlement in the period it happened in, whatever became of its instruction since.
 */
export class PaymentSettlement {
  id!: string;
  tenantId!: string;
  /** The `instruction.settled` event that told of it: a projection repeated records nothing twice. */
  eventKey!: string;
  orderId!: string;
  instructionId!: string;
  settledAt!: Date;
  /** What this settlement took: the instruction's amount then. */
  amountMinor!: bigint;
  currency!: string;
  providerRef?: string | null;
  appId?: string | null;
  paymentMethod?: string | null;
}

export const PaymentSettlementSchema = new EntitySchema<PaymentSettlement>({
  class: PaymentSettlement,
  tableName: 'payment_settlement',
  uniques: [{ properties: ['tenantId', 'eventKey'], name: 'payment_settlement_tenant_event_key_unique' }],
  indexes: [
    { properties: ['tenantId', 'settledAt', 'id'] },
    { properties: ['instructionId', 'settledAt'] },
    // Reconciliation finds the payments a provider's ledger names by their reference.
    { properties: ['tenantId', 'appId', 'providerRef'] },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    eventKey: { type: 'string', length: 200 },
    orderId: { type: 'uuid' },
    instructionId: { type: 'uuid' },
    settledAt: { type: 'datetime' },
    amountMinor: { type: new BigIntType('bigint') },
    currency: { type: 'string', length: 3 },
    providerRef: { type: 'string', length: 128, nullable: true },
    appId: { type: 'string', length: 64, nullable: true },
    paymentMethod: { type: 'string', length: 16, nullable: true },
  },
});
