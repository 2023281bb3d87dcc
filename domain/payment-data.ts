// The payment data no request, answer or log line of ours may carry: card numbers and bank account
// numbers (ARCHITECTURE.md, "Money, dates, references"), found and masked the same way everywhere.
import { holdsBankAccountNumber, maskBankAccountNumbers } from './bank-account-number.js';
import { holdsCardNumber, maskCardNumbers } from './card-number.js';

export type PaymentData = 'card_number' | 'bank_account';

/** What payment data the texts hold, if any: a card number is named before a bank account's. */
export function paymentDataIn(...texts: string[]): PaymentData | undefined {
  if (texts.some((text) => holdsCardNumber(text))) return 'card_number';
  if (texts.some((text) => holdsBankAccountNumber(text))) return 'bank_account';
  return undefined;
}

/** The text with every card and bank account number in it masked, for a log line. */
export function maskPaymentData(text: string): string {
  return maskBankAccountNumbers(maskCardNumbers(text));
}
