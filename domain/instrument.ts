// Stored instruments (ARCHITECTURE.md, "Customers"): what a provider's hosted form gives back for the
// card or bank account a customer typed on the provider's page. Never the number itself: a token the
// provider alone can charge, and what may be shown of it.

/** What may be shown of an instrument: enough for a customer to know it, nothing to pay with. */
export interface InstrumentDisplay {
  /** Cards: the scheme (visa, mastercard, amex), the last four digits and the expiry. */
  brand?: string;
  last4?: string;
  expMonth?: number;
  expYear?: number;
  /** Bank accounts: the IBAN with all but its country, check digits and last four characters masked. */
  maskedIban?: string;
  holderName?: string;
}

export const MANDATE_STATUSES = ['PENDING', 'ACTIVE', 'CANCELLED', 'EXPIRED'] as const;
export type MandateStatus = (typeof MANDATE_STATUSES)[number];

/** A cancelled or expired mandate: ended for good (a new one comes with a new instrument), nothing is debited under it. */
export function mandateEnded(status: string | null | undefined): status is 'CANCELLED' | 'EXPIRED' {
  return status === 'CANCELLED' || status === 'EXPIRED';
}

/** A bank-debit mandate the customer signed on the provider's form. */
export interface Mandate {
  mandateRef: string;
  status: MandateStatus;
  signedAt: string;
}

/** What a hosted form's one-time reference is exchanged for. */
export interface TokenisedInstrument {
  /** The provider's token: charged in place of the details, and sealed at rest like an app secret. */
  token: string;
  paymentMethod: 'CARD' | 'BANK_DEBIT' | 'BANK_TRANSFER';
  display: InstrumentDisplay;
  mandate?: Mandate;
}

/** Where a provider's hosted form sends the customer back to, and for what kind of instrument. */
export interface HostedSessionRequest {
  paymentMethod: TokenisedInstrument['paymentMethod'];
  /** Our page; the provider appends `session` (its id) and `ref`, the one-time reference of what the customer entered. */
  returnUrl: string;
  locale?: string;
}

export interface HostedSession {
  sessionId: string;
  /** The provider's own page, where the customer types the details. */
  url: string;
}

/**
 * What is shown of a provider token: its last four characters, so support can match it with the
 * provider's records; nothing of a token shorter than 12, of which four would be too much of it.
 */
export function tokenHint(token: string): string {
  return token.length < 12 ? '…' : `…${token.slice(-4)}`;
}
