// A refund of a settled collection (ARCHITECTURE.md, "After settlement"): its one declared shape, and
// the rule of how much may still be refunded.

export const REFUND_STATUSES = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

export interface Refund {
  /** Its row in the read model, chosen by the API when the refund was asked for. */
  refundId: string;
  instructionRef: string;
  /** Its place among the instruction's refunds, from 1: part of its idempotency key at the provider. */
  number: number;
  amountMinor: string;
  currency: string;
  reason?: string;
  /** The provider's reference of the payment refunded. */
  paymentRef: string;
  /**
   * The app that took that payment, which makes the refund and calls back about it, whatever the
   * instruction is paid through later. Absent on refunds asked for before it was kept: those go
   * through the instruction's app of the moment, until it is paid or amended to go through another
   * while they are under way, when they keep the one they went through.
   */
  appId?: string;
  status: RefundStatus;
  /** The provider's reference of the refund. */
  providerRef?: string;
  failureCode?: string;
  createdAt: string;
  succeededAt?: string;
  failedAt?: string;
}

/** The failure code of a refund of unknown outcome a tenant admin resolved as not made. */
export const RESOLVED_NOT_REFUNDED = 'resolved_not_refunded';

/**
 * Money of one instruction after it settled, in minor units: what settled (every time) and what was
 * taken back, and its last payment, the one a refund now is of.
 */
export interface SettledMoney {
  settledAmountMinor: string;
  returnedAmountMinor: string;
  /** The provider's reference of the last payment. */
  providerRef?: string;
  /** What the last payment took: the instruction's amount, which is not changed once it settled. */
  amountMinor: string;
}

/**
 * What may still be refunded: what the instruction's payments took, less what was taken back and
 * what was (or is being) refunded; and no more than is left of the payment a refund is of, the last
 * one (an instruction collected again after part of its payment was taken back, for another amount,
 * has more left than its last payment took). A failed refund gives its amount back.
 */
export function refundableMinor(
  money: SettledMoney,
  refunds: readonly Pick<Refund, 'amountMinor' | 'status' | 'paymentRef'>[],
): bigint {
  const counted = refunds.filter((r) => r.status !== 'FAILED');
  const total = (of: typeof counted) => of.reduce((sum, r) => sum + BigInt(r.amountMinor), 0n);
  const ofInstruction = BigInt(money.settledAmountMinor) - BigInt(money.returnedAmountMinor) - total(counted);
  const ofPayment = BigInt(money.amountMinor) - total(counted.filter((r) => r.paymentRef === money.providerRef));
  return ofPayment < ofInstruction ? ofPayment : ofInstruction;
}
