import type { InstalledApp } from '../domain/installed-app.js';
import type { PaymentOutcome, PaymentRequest, ProviderResult } from '../domain/payment-outcome.js';

export type { InstalledApp };

/** Whose payment a callback is about, read before its signature can be checked with that tenant's secrets. */
export interface CallbackReference {
  tenantId: string;
  orderRef: string;
  instructionRef: string;
  providerRef: string;
}

/**
 * One payment provider behind the interface every app implements (ARCHITECTURE.md, "Apps").
 * Credentials come from the tenant's installation, passed in by the activity that calls it: never
 * through workflow input or history.
 */
export interface AppConnector {
  readonly appId: string;
  /** Moves the money, or says why not. The same idempotency key never pays twice. */
  execute(payment: PaymentRequest, idempotencyKey: string, installation: InstalledApp): Promise<PaymentOutcome>;
  /** The current state of an earlier payment. */
  getStatus(providerRef: string, installation: InstalledApp): Promise<PaymentOutcome>;
  /** The payment made under an idempotency key, or undefined when the provider has none (the call never reached it). */
  findByIdempotencyKey(idempotencyKey: string, installation: InstalledApp): Promise<PaymentOutcome | undefined>;
  /** Apps that settle later: whose payment a callback body concerns, or undefined if it is not one. */
  callbackReference?(rawBody: string): CallbackReference | undefined;
  /** Apps that settle later: the result in a callback, or undefined when its signature does not hold. */
  verifyCallback?(
    rawBody: string,
    headers: Record<string, string | undefined>,
    installation: InstalledApp,
  ): ProviderResult | undefined;
}
