import type { InstructionPlan } from './instruction.js';

/**
 * What a provider said about one payment attempt. Declines are answers, not errors: the workflow
 * decides whether to dun. PENDING means the provider settles later and says so by callback (or
 * when asked). Transport failures and 5xx are thrown and retried by Temporal instead.
 */
export type PaymentOutcome =
  | { status: 'SETTLED'; providerRef: string; voucherCode?: string; amount?: StatedAmount }
  | { status: 'DECLINED'; providerRef: string; code: string; retryable: boolean }
  | { status: 'PENDING'; providerRef: string }
  | Reversal;

/**
 * A failure code that says the outcome is unknown (the call unanswered, or refused under its key):
 * no longer true once the provider answers PENDING under the key. A provider's own code never reads
 * so (`ownCode`).
 */
export function speaksOfUnknownOutcome(failureCode: string | undefined): boolean {
  return failureCode === UNKNOWN_OUTCOME.unanswered || failureCode?.startsWith(UNKNOWN_OUTCOME.refusedPrefix) === true;
}

/** The failure codes of an unknown outcome (`speaksOfUnknownOutcome`), for a query to match them. */
export const UNKNOWN_OUTCOME = { unanswered: 'provider_unavailable', refusedPrefix: 'outcome_unknown' } as const;

/**
 * A provider's decline or failure code as kept: one that would read as an unknown outcome is put
 * under `declined:`, since a provider that declines has answered (the payment page would otherwise
 * wait for an answer already given, and offer no form).
 */
export function ownCode(code: string): string {
  return speaksOfUnknownOutcome(code) ? `declined:${code}`.slice(0, 64) : code;
}

/** The money a provider says a payment (or refund) moved, when it says: believed only when it is what was asked. */
export interface StatedAmount {
  amountMinor: string;
  currency: string;
}

/**
 * Money taken back after the payment settled: a bank debit returned by the customer's bank (with its
 * return code), or a card payment charged back after a dispute (with its reason). A provider says so
 * by callback, or in a status answer.
 */
export interface Reversal {
  status: 'RETURNED';
  providerRef: string;
  kind: 'RETURN' | 'CHARGEBACK';
  code: string;
  /**
   * The money taken back, in the payment's currency, when the provider says: less than was paid when
   * a part of it had been refunded first, which a refund still PENDING here may have been.
   */
  amountMinor?: string;
  /**
   * Verified only by a callback secret the tenant has replaced since (a bank's return told by a
   * merchant account it has left): taken, but never collected again, as a key is often replaced
   * because it leaked, and a return forged with it would otherwise charge the customer a second time.
   */
  underReplacedSecret?: true;
}

/** The final answer a provider gives later, for a payment it first answered PENDING (or one that settled). */
export type ProviderResult = Exclude<PaymentOutcome, { status: 'PENDING' }>;

/** Return codes after which collecting again may work: the customer may have the money another day. */
export const RETRYABLE_RETURN_CODES: readonly string[] = ['insufficient_funds', 'refer_to_payer'];

/** A refund of a settled collection, as its provider is asked for it. */
export interface RefundRequest {
  tenantId: string;
  orderRef: string;
  instructionRef: string;
  /** The provider's reference of the payment refunded. */
  paymentRef: string;
  amountMinor: string;
  currency: string;
  reason?: string;
}

/** What a provider said about a refund. PENDING: it tells the result later, by callback or when asked. */
export type RefundOutcome =
  | { status: 'SUCCEEDED'; providerRef: string; amount?: StatedAmount }
  | { status: 'PENDING'; providerRef: string }
  | { status: 'FAILED'; providerRef?: string; code: string };

export type RefundResult = Exclude<RefundOutcome, { status: 'PENDING' }>;

/** The payment a provider is asked to make (orders/contract/instruction-codec.ts makes it from the instruction). */
export interface PaymentRequest extends Pick<
  InstructionPlan,
  'instructionRef' | 'direction' | 'paymentMethod' | 'amountMinor' | 'currency' | 'country'
> {
  tenantId: string;
  orderRef: string;
  /** The card or account (a provider's reference) for collections and transfers, the voucher for voucher payouts. */
  financialInstrumentId?: string;
  /** Or a stored instrument, whose token the payment activity reads and sends in place of financialInstrumentId. */
  instrumentId?: string;
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
