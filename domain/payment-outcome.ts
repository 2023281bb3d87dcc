import type { InstructionPlan } from './instruction.js';

/**
 * What a provider said about one payment attempt. Declines are answers, not errors: the workflow
 * decides whether to dun. PENDING means the provider settles later and says so by callback (or
 * when asked). Transport failures and 5xx are thrown and retried by Temporal instead.
 */
export type PaymentOutcome =
  | { status: 'SETTLED'; providerRef: string; voucherCode?: string }
  | { status: 'DECLINED'; providerRef: string; code: string; retryable: boolean }
  | { status: 'PENDING'; providerRef: string };

/** The final answer a provider gives later, for a payment it first answered PENDING. */
export type ProviderResult = Exclude<PaymentOutcome, { status: 'PENDING' }>;

/** The payment a provider is asked to make (orders/contract/instruction-codec.ts makes it from the instruction). */
export interface PaymentRequest extends Pick<
  InstructionPlan,
  'instructionRef' | 'direction' | 'paymentMethod' | 'amountMinor' | 'currency' | 'country'
> {
  tenantId: string;
  orderRef: string;
  /** A stored card or account for collections and transfers, the voucher for voucher payouts. */
  financialInstrumentId: string;
}

/**
 * The provider refused the request itself (a 4xx: bad credentials, an unsupported payment): asking
 * again cannot help until the tenant changes something, so it is not retried.
 */
export class ProviderRejectedError extends Error {
  override name = 'ProviderRejectedError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
