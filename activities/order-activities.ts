import type { OrderSnapshot } from '../domain/order.js';
import type { PaymentOutcome, PaymentRequest } from '../domain/payment-outcome.js';

export interface ExecutePaymentInput {
  appId: string;
  request: PaymentRequest;
  idempotencyKey: string;
}

export interface PaymentStatusInput {
  appId: string;
  tenantId: string;
  providerRef: string;
}

/** The activities a payment-order workflow calls. Workflows import this file for its types only. */
export interface OrderActivities {
  projectOrderState(snapshot: OrderSnapshot): Promise<void>;
  executePayment(input: ExecutePaymentInput): Promise<PaymentOutcome>;
  getPaymentStatus(input: PaymentStatusInput): Promise<PaymentOutcome>;
}
