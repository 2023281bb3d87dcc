import type { PaymentOutcome, PaymentRequest } from '../domain/payment-outcome.js';

/** One payment provider behind the interface every app implements (ARCHITECTURE.md, "Apps"). */
export interface AppConnector {
  readonly appId: string;
  execute(payment: PaymentRequest, idempotencyKey: string): Promise<PaymentOutcome>;
  getStatus(providerRef: string): Promise<PaymentOutcome>;
}
