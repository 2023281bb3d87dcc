import type { Got, Response } from 'got';
import { checkedLedgerPage } from '../provider-ledger.js';
import {
  callbackReferenceOf,
  finalResult,
  mandateNewsOf,
  providerCallbackUrl,
  type InstalledApp,
  saysNoPayment,
  type AppConnector,
  type CallbackReference,
  type CallbackResult,
} from '../app-connector.js';
import { bounded } from '../bounded-response.js';
import { checkedOutcome, checkedRefund, isCode, type ProviderAnswer, type RefundAnswer } from '../provider-answer.js';
import { ProviderRejectedError, type PaymentOutcome, type RefundOutcome } from '../../domain/payment-outcome.js';
import { SANDBOX_SIGNATURE_HEADER, verifySandboxCallback } from './callback-signature.js';
import { checkedSession, checkedTokenised } from '../hosted-session-answer.js';

/** A payment as the sandbox provider answers it, unchecked. */
interface SandboxPayment {
  id: unknown;
  /** "refund" for a refund; absent (or "payment") for a payment. */
  object?: unknown;
  status: unknown;
  declineCode?: unknown;
  retryable?: unknown;
  voucherCode?: unknown;
  returnCode?: unknown;
  returnedAmountMinor?: unknown;
  failureCode?: unknown;
  amountMinor?: unknown;
  currency?: unknown;
}

interface SandboxCallback extends SandboxPayment {
  reference?: { tenantId?: unknown; orderRef?: unknown; instructionRef?: unknown };
}

const WHO = 'the sandbox provider';

export interface SandboxConnectorOptions {
  baseUrl: string;
  /** Where this platform's API takes provider callbacks: `{callbackBaseUrl}/v1/providers/{appId}/callbacks`. */
  callbackBaseUrl: string;
  timeoutMs?: number;
}

const SANDBOX_APPS = ['SANDBOX_CARD', 'SANDBOX_BANK', 'SANDBOX_VOUCHERS'] as const;

/**
 * The three sandbox apps, each a connector to the sandbox provider over HTTP with the tenant's API
 * key. got's own retries are off: the activity's retry policy is the one place that decides how
 * often a payment call is repeated. A 4xx is the provider refusing the request (bad key, a payment
 * it does not do): not worth repeating. A 5xx or a timeout is thrown as it is, and retried.
 */
export function createSandboxConnectors(http: Got, options: SandboxConnectorOptions): AppConnector[] {
  const client = http.extend({
    prefixUrl: options.baseUrl,
    retry: { limit: 0 },
    timeout: { request: options.timeoutMs ?? 10_000 },
    followRedirect: false,
    throwHttpErrors: false,
    responseType: 'json',
  });
  const callbackUrl = (appId: string, tenantId: string) =>
    providerCallbackUrl(options.callbackBaseUrl, appId, tenantId);
  return SANDBOX_APPS.map((appId) => ({
    appId,
    // Vouchers are payouts: nothing to refund.
    ...(appId === 'SANDBOX_VOUCHERS'
      ? {}
      : ({
          async refund(refund, idempotencyKey, installation): Promise<RefundOutcome> {
            const response = await bounded(
              client.post<SandboxPayment>('v1/refunds', {
                headers: { authorization: `Bearer ${installation.secrets.apiKey}`, 'idempotency-key': idempotencyKey },
                json: {
                  paymentId: refund.paymentRef,
                  amountMinor: refund.amountMinor,
                  currency: refund.currency,
                  ...(refund.reason ? { reason: refund.reason } : {}),
                  reference: {
                    tenantId: refund.tenantId,
                    orderRef: refund.orderRef,
                    instructionRef: refund.instructionRef,
                  },
                  ...(appId === 'SANDBOX_BANK' ? { callbackUrl: callbackUrl(appId, refund.tenantId) } : {}),
                },
              }),
            );
            return checkedRefund(refundAnswerOf(answered(response)), WHO);
          },
          async getRefundStatus(providerRef, installation): Promise<RefundOutcome> {
            const response = await bounded(
              client.get<SandboxPayment>(`v1/refunds/${encodeURIComponent(providerRef)}`, {
                headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
              }),
            );
            return checkedRefund(refundAnswerOf(answered(response)), WHO);
          },
          hostedForms: {
            origin: () => new URL(options.baseUrl).origin,
            async open(request, installation, tenantId) {
              const response = await bounded(
                client.post<unknown>('v1/hosted-sessions', {
                  headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
                  json: {
                    ...request,
                    ...(appId === 'SANDBOX_BANK' ? { callbackUrl: callbackUrl(appId, tenantId) } : {}),
                  },
                }),
              );
              return checkedSession(answered(response as Response<SandboxPayment>), WHO);
            },
            async exchange(sessionId, ref, installation) {
              const response = await bounded(
                client.post<unknown>(`v1/hosted-sessions/${encodeURIComponent(sessionId)}/exchange`, {
                  headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
                  json: { ref },
                }),
              );
              return checkedTokenised(answered(response as Response<SandboxPayment>), WHO);
            },
          },
        } satisfies Pick<AppConnector, 'refund' | 'getRefundStatus' | 'hostedForms'>)),
    async execute(payment, idempotencyKey, installation) {
      const response = await bounded(
        client.post<SandboxPayment>('v1/payments', {
          headers: { authorization: `Bearer ${installation.secrets.apiKey}`, 'idempotency-key': idempotencyKey },
          json: {
            appId,
            paymentMethod: payment.paymentMethod,
            direction: payment.direction,
            amountMinor: payment.amountMinor,
            currency: payment.currency,
            country: payment.country,
            instrument: payment.financialInstrumentId,
            reference: {
              tenantId: payment.tenantId,
              orderRef: payment.orderRef,
              instructionRef: payment.instructionRef,
            },
            // Bank debits settle by callback; card payments are called back only when charged back.
            ...(appId === 'SANDBOX_VOUCHERS' ? {} : { callbackUrl: callbackUrl(appId, payment.tenantId) }),
          },
        }),
      );
      return toOutcome(answered(response));
    },
    async ledger(period, cursor, installation) {
      const response = await bounded(
        client.get<unknown>('v1/ledger', {
          searchParams: {
            appId,
            from: period.from.toISOString(),
            to: period.to.toISOString(),
            ...(cursor ? { cursor } : {}),
          },
          headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
        }),
      );
      return checkedLedgerPage(answered(response as Response<SandboxPayment>), WHO);
    },
    async getStatus(providerRef, installation) {
      const response = await bounded(
        client.get<SandboxPayment>(`v1/payments/${encodeURIComponent(providerRef)}`, {
          headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
        }),
      );
      return toOutcome(answered(response));
    },
    async findByIdempotencyKey(idempotencyKey, installation) {
      const response = await bounded(
        client.get<SandboxPayment>('v1/payments', {
          searchParams: { idempotencyKey },
          headers: { authorization: `Bearer ${installation.secrets.apiKey}` },
        }),
      );
      if (saysNoPayment(response.statusCode, response.body)) return undefined;
      return toOutcome(answered(response));
    },
    ...(appId === 'SANDBOX_BANK'
      ? {
          mandateCallbacks: {
            mandateRefOf: (rawBody: string) => mandateNewsOf(parseJson(rawBody))?.mandateRef,
            verify(rawBody: string, headers: Record<string, string | undefined>, installation: InstalledApp) {
              const apiKey = installation.secrets.apiKey;
              if (!apiKey || !verifySandboxCallback(apiKey, rawBody, headers[SANDBOX_SIGNATURE_HEADER]))
                return undefined;
              return mandateNewsOf(parseJson(rawBody));
            },
          },
        }
      : {}),
    callbackReference(rawBody): CallbackReference | undefined {
      const body = parseJson<SandboxCallback>(rawBody);
      return callbackReferenceOf(body?.id, body?.reference);
    },
    verifyCallback(rawBody, headers, installation): CallbackResult | undefined {
      const apiKey = installation.secrets.apiKey;
      if (!apiKey || !verifySandboxCallback(apiKey, rawBody, headers[SANDBOX_SIGNATURE_HEADER])) return undefined;
      const body = parseJson<SandboxCallback>(rawBody);
      return finalResult(body && { ...answerOf(body), ...refundAnswerOf(body), object: body.object }, WHO);
    },
  }));
}

function answered(response: Response<SandboxPayment>): SandboxPayment {
  const { statusCode } = response;
  if (statusCode >= 200 && statusCode < 300) return response.body;
  // Its error code is told on (a failure code, an activity's failure) only if it reads as one.
  const stated = (response.body as { error?: unknown } | undefined)?.error;
  const code = isCode(stated) ? stated : `http_${statusCode}`;
  if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
    throw new ProviderRejectedError(code, `the sandbox provider refused the request with ${statusCode} ${code}`);
  }
  throw new Error(`the sandbox provider answered ${statusCode} ${code}`);
}

/** The sandbox's payment in the words every connector checks (it names its reference `id`). */
function answerOf(payment: SandboxPayment): ProviderAnswer {
  const { id, status, declineCode, retryable, voucherCode, returnCode, returnedAmountMinor, amountMinor, currency } =
    payment;
  return {
    providerRef: id,
    status,
    declineCode,
    retryable,
    voucherCode,
    returnCode,
    returnedAmountMinor,
    amountMinor,
    currency,
  };
}

function refundAnswerOf({ id, status, failureCode, amountMinor, currency }: SandboxPayment): RefundAnswer {
  return { providerRef: id, status, failureCode, amountMinor, currency };
}

function toOutcome(body: SandboxPayment): PaymentOutcome {
  return checkedOutcome(answerOf(body), WHO);
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
