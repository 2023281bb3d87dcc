/** How a customer pays or is paid. */
export const PAYMENT_METHODS = ['CARD', 'BANK_DEBIT', 'BANK_TRANSFER', 'VOUCHER'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

/** A scheme's direction: collecting (`DEBIT`) or paying out (`CREDIT`). */
export type SchemeKind = 'collect' | 'payout';
