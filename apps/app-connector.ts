import type { InstalledApp } from '../domain/installed-app.js';
import type { LedgerPage } from './provider-ledger.js';
import type { HostedSession, HostedSessionRequest, MandateStatus, TokenisedInstrument } from '../domain/instrument.js';
import { MANDATE_STATUSES } from '../domain/instrument.js';
import type {
  PaymentOutcome,
  PaymentRequest,
  ProviderResult,
  RefundOutcome,
  RefundRequest,
  RefundResult,
} from '../domain/payment-outcome.js';
import { REF_PATTERN } from '../domain/refs.js';
import { UUID } from '../domain/uuid.js';
import {
  checkedOutcome,
  checkedRefund,
  MalformedAnswerError,
  PROVIDER_REF,
  type ProviderAnswer,
  type RefundAnswer,
} from './provider-answer.js';

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
  // Any case is a UUID, but our ids (and the order's workflow id built from it) are lower case.
  return { tenantId: tenantId.toLowerCase(), orderRef, instructionRef, providerRef };
}

/**
 * The final result a verified callback states: a payment's (`object` absent or "payment"), or a
 * refund's (`object` "refund"); undefined for one still PENDING, or not a well-formed answer.
 */
export function finalResult(
  body: (ProviderAnswer & RefundAnswer & { object?: unknown }) | undefined,
  who: string,
): CallbackResult | undefined {
  try {
    if (body?.object === 'refund') {
      const outcome = checkedRefund(body, who);
      return outcome.status === 'PENDING'
        ? undefined
        : { kind: 'refund', result: { ...outcome, providerRef: outcome.providerRef! } };
    }
    const outcome = checkedOutcome(body, who);
    return outcome.status === 'PENDING' ? undefined : { kind: 'payment', result: outcome };
  } catch (err) {
    if (err instanceof MalformedAnswerError) return undefined;
    throw err;
  }
}

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
  /**
   * Refunds a settled collection, in full or in part. The same idempotency key never refunds twice.
   * Apps that cannot refund (payouts only) leave it out.
   */
  refund?(refund: RefundRequest, idempotencyKey: string, installation: InstalledApp): Promise<RefundOutcome>;
  /** The current state of an earlier refund. */
  getRefundStatus?(providerRef: string, installation: InstalledApp): Promise<RefundOutcome>;
  /**
   * Apps whose provider takes card or bank details on its own page (ARCHITECTURE.md, "Customers"):
   * open a form for the customer, then exchange the one-time reference it sends them back with for
   * the provider's token. We never see the details.
   */
  hostedForms?: {
    /** The origin of the provider's pages: where the payment page may send a customer. */
    origin(installation: InstalledApp): string;
    /** A form for `tenantId`'s customer: the provider calls back (a mandate's news) at an address naming the tenant. */
    open(request: HostedSessionRequest, installation: InstalledApp, tenantId: string): Promise<HostedSession>;
    /** The token a reference stands for; a reference already used (or not this session's) is refused. */
    exchange(sessionId: string, ref: string, installation: InstalledApp): Promise<TokenisedInstrument>;
  };
  /**
   * Apps whose bank debits run under mandates: a callback telling a mandate's news (confirmed by the
   * bank, cancelled by the customer) comes on the app's callback address too.
   */
  mandateCallbacks?: {
    /** The mandate a callback body is about, or undefined when it is no mandate's news. */
    mandateRefOf(rawBody: string): string | undefined;
    /** Its news, or undefined when its signature does not hold. */
    verify(
      rawBody: string,
      headers: Record<string, string | undefined>,
      installation: InstalledApp,
    ): MandateNews | undefined;
  };
  /**
   * The provider's own record of the payments made through this installation in a period, a page
   * at a time: what reconciliation checks ours against. Apps whose provider keeps none leave it out.
   */
  ledger?(
    period: { from: Date; to: Date },
    cursor: string | undefined,
    installation: InstalledApp,
  ): Promise<LedgerPage>;
  /** Apps that settle later: whose payment a callback body concerns, or undefined if it is not one. */
  callbackReference?(rawBody: string): CallbackReference | undefined;
  /** Apps that settle later: the result in a callback, or undefined when its signature does not hold. */
  verifyCallback?(
    rawBody: string,
    headers: Record<string, string | undefined>,
    installation: InstalledApp,
  ): CallbackResult | undefined;
}

/** What a verified callback says: a payment's result (a reversal among them), or a refund's. */
export type CallbackResult =
  { kind: 'payment'; result: ProviderResult } | { kind: 'refund'; result: RefundResult & { providerRef: string } };

/** A mandate's new status, as its provider tells it. */
export interface MandateNews {
  mandateRef: string;
  status: MandateStatus;
}

/** The news a mandate callback body states: `{object: "mandate", mandateRef, status}`, or undefined. */
export function mandateNewsOf(body: unknown): MandateNews | undefined {
  const { object, mandateRef, status } = (body ?? {}) as Record<string, unknown>;
  if (object !== 'mandate' || typeof mandateRef !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(mandateRef))
    return undefined;
  if (!(MANDATE_STATUSES as readonly unknown[]).includes(status)) return undefined;
  return { mandateRef, status: status as MandateStatus };
}

/**
 * Where `appId`'s provider calls back with `tenantId`'s results. The tenant is named for mandate
 * news, whose bodies name none: the callback is checked against that tenant alone, where otherwise
 * every tenant holding a mandate of that name would be tried (orders/http/provider-callbacks.ts).
 */
export function providerCallbackUrl(baseUrl: string, appId: string, tenantId: string): string {
  return `${baseUrl}/v1/providers/${appId}/callbacks?tenantId=${encodeURIComponent(tenantId)}`;
}
