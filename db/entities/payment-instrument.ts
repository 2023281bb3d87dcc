import { EntitySchema } from '@mikro-orm/core';
import type { InstrumentDisplay, MandateStatus } from '../../domain/instrument.js';

/**
 * A card or bank account as a provider's token (ARCHITECTURE.md, "Customers"): never its number.
 * Saved ones belong to a customer and are listed; one entered for a single payment is not.
 */
export class PaymentInstrument {
  id!: string;
  tenantId!: string;
  /** The customer it is saved for; null for one used once. */
  customerId: string | null = null;
  appId!: string;
  paymentMethod!: string;
  /**
   * The provider's token, sealed under the master key (db/sealed-columns.ts); null once it can pay
   * nothing more (removed, or not saved and its one payment over), so it is kept nowhere.
   */
  tokenCiphertext!: string | null;
  /** Its last four characters, to match it with the provider's records. */
  tokenHint!: string;
  display: InstrumentDisplay = {};
  status: 'ACTIVE' | 'REMOVED' = 'ACTIVE';
  saved = false;
  /** Not saved: the idempotency key of the one payment it may pay, once it was first charged. */
  chargedUnderKey: string | null = null;
  /** Entered on the payment page: the instruction it was entered to pay (`sweepEnteredTokens`). */
  enteredFor: string | null = null;
  mandateRef: string | null = null;
  mandateStatus: MandateStatus | null = null;
  mandateSignedAt: Date | null = null;
  /**
   * Which value of its app's callback secret it was made under (the account its mandate is at): a
   * digest salted with its id (domain/retired-secrets.ts `madeUnderDigest`), sealed like its token;
   * null where the secret is not the account (a connector's), and for instruments stored before it was kept.
   */
  madeUnderCiphertext: string | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const PaymentInstrumentSchema = new EntitySchema<PaymentInstrument>({
  class: PaymentInstrument,
  tableName: 'payment_instrument',
  indexes: [
    { properties: ['tenantId', 'customerId', 'createdAt', 'id'] },
    { properties: ['appId', 'mandateRef'] },
    // What the sweep of one-time tokens reads (orders/one-time-instruments.ts): only unsaved tokens it may erase.
    {
      name: 'payment_instrument_unsaved_token_index',
      expression:
        'CREATE INDEX payment_instrument_unsaved_token_index ON public.payment_instrument USING btree (created_at) WHERE ((NOT saved) AND (token_ciphertext IS NOT NULL) AND (entered_for_instruction_id IS NOT NULL))',
    },
  ],
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
    customerId: {
      kind: 'm:1',
      entity: 'Customer',
      mapToPk: true,
      fieldName: 'customer_id',
      nullable: true,
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    appId: { type: 'string', length: 64 },
    paymentMethod: { type: 'string', length: 16 },
    tokenCiphertext: { type: 'text', nullable: true },
    tokenHint: { type: 'string', length: 8 },
    display: { type: 'json' },
    status: { type: 'string', length: 16 },
    saved: { type: 'boolean' },
    chargedUnderKey: { type: 'string', length: 255, nullable: true },
    enteredFor: { type: 'uuid', fieldName: 'entered_for_instruction_id', nullable: true },
    mandateRef: { type: 'string', length: 64, nullable: true },
    mandateStatus: { type: 'string', length: 16, nullable: true },
    mandateSignedAt: { type: 'datetime', nullable: true },
    madeUnderCiphertext: { type: 'text', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
