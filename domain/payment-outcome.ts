/**
 * What a provider said about one payment attempt. Declines are answers, not errors: the workflow
 * decides whether to dun. Transport failures and 5xx are thrown and retried by Temporal instead.
 */
export type PaymentOutcome =
  | { status: 'SETTLED'; providerRef: string }
  | { status: 'DECLINED'; providerRef: string; code: string; retryable: boolean };

export interface PaymentRequest {
  tenantId: string;
  orderRef: string;
  instructionRef: string;
  direction: 'DEBIT' | 'CREDIT';
  amountMinor: string;
  currency: string;
  country: string;
  financialInstrumentId: string;
}
