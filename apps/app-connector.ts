import type { InstalledApp } from '../domain/installed-app.js';
import type { PaymentOutcome, PaymentRequest, ProviderResult } from '../domain/payment-outcome.js';
import { REF_PATTERN } from '../domain/refs.js';
import { checkedOutcome, MalformedAnswerError, PROVIDER_REF, type ProviderAnswer } from './provider-answer.js';

export type { InstalledApp };

/**
 * How a provider says it has no payment under an idempotency key: a 404 whose JSON body is
 * `{"error": "payment_not_found"}`. Any other answer to a look-up (another 404, a 405, a 501) is a
 * provider that cannot tell, and the key is kept (README, "Your own provider").
 */
export const PAYMENT_NOT_FOUND = 'payment_not_found';

/** Whether a look-up's answer says, in so many words, that the provider has no payment under the key. */
export function saysNoPayment(statusCode: number, body: unknown): boolean {
  return statusCode === 404 && (body as { error?: unknown } | undefined)?.error === PAYMENT_NOT_FOUND;
}

/** The payment a callback names, when each part of the name is well formed; otherwise it is no callback of ours. */
export function callbackReferenceOf(
  providerRef: unknown,
  reference: { tenantId?: unknown; orderRef?: unknown; instructionRef?: unknown } | undefined,
): CallbackReference | undefined {
  const { tenantId, orderRef, instructionRef } = reference ?? {};
  const isRef = (value: unknown): value is string => typeof value === 'string' && REF_PATTERN.test(value);
  if (typeof providerRef !== 'string' || !PROVIDER_REF.test(providerRef)) return undefined;
  if (typeof tenantId !== 'string' || !UUID.test(tenantId) || !isRef(orderRef) || !isRef(instructionRef))
    return undefined;
  return { tenantId, orderRef, instructionRef, providerRef };
}

/** The final result a verified callback states; undefined for one still PENDING, or not a well-formed answer. */
export function finalResult(answer: ProviderAnswer | undefined, who: string): ProviderResult | undefined {
  try {
    const outcome = checkedOutcome(answer, who);
    return outcome.status === 'PENDING' ? undefined : outcome;
  } catch (err) {
    if (err instanceof MalformedAnswerError) return undefined;
    throw err;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  /**
   * The payment made under an idempotency key, or undefined when the provider says it has none (the
   * call never reached it). A provider that cannot tell refuses (ProviderRejectedError).
   */
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
