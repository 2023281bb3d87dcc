import { randomUUID } from 'node:crypto';
import { checkedLedgerPage } from '../provider-ledger.js';
import type { Got, Response } from 'got';
import { Webhook } from 'standardwebhooks';
import {
  callbackReferenceOf,
  finalResult,
  mandateNewsOf,
  providerCallbackUrl,
  saysNoPayment,
  type AppConnector,
  type CallbackReference,
  type CallbackResult,
} from '../app-connector.js';
import { bounded } from '../bounded-response.js';
import {
  checkedOutcome,
  checkedRefund,
  MalformedAnswerError,
  type ProviderAnswer,
  type RefundAnswer,
} from '../provider-answer.js';
import { checkedSession, checkedTokenised } from '../hosted-session-answer.js';
import { guardedLookup } from '../outbound-guard.js';
import type { OutboundUrlPolicy } from '../../domain/outbound-url.js';
import { outboundUrlProblem } from '../../domain/outbound-url.js';
import { ProviderRejectedError, type RefundOutcome } from '../../domain/payment-outcome.js';

/** What the tenant's provider POSTs back later (README, "Your own provider"): an answer, and whose payment it is. */
interface ProviderCallbackBody extends ProviderAnswer, RefundAnswer {
  /** "refund" for a refund's result. */
  object?: unknown;
  reference?: { tenantId?: unknown; orderRef?: unknown; instructionRef?: unknown };
}

const WHO = "the tenant's provider";

export interface HttpConnectorOptions {
  callbackBaseUrl: string;
  outboundUrls: OutboundUrlPolicy;
}

/**
 * HTTP_CONNECTOR: each payment forwarded to the tenant's own provider as an HTTP request signed per
 * the Standard Webhooks specification with the installation's signing secret (its idempotency key
 * as the message id, so a retry is recognisably the same message). The provider's asynchronous
 * results come back to us signed the same way. Requests go only to public https addresses (or
 * loopback in local development), checked again on every connection.
 */
export function createHttpConnector(http: Got, options: HttpConnectorOptions): AppConnector {
  const client = http.extend({
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    responseType: 'json',
    dnsLookup: guardedLookup(options.outboundUrls) as never,
  });

  async function send(
    method: 'POST' | 'GET',
    url: string,
    messageId: string,
    body: string,
    secret: string,
    timeoutMs: number,
  ) {
    const problem = outboundUrlProblem(url, options.outboundUrls);
    if (problem) throw new ProviderRejectedError('url_not_allowed', `the provider URL ${problem}`);
    const timestamp = new Date();
    const signature = new Webhook(secret.replace(/^whsec_/, '')).sign(messageId, timestamp, body);
    return bounded(
      client<ProviderAnswer>(url, {
        method,
        timeout: { request: timeoutMs },
        headers: {
          'content-type': 'application/json',
          'webhook-id': messageId,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signature,
          ...(method === 'POST' ? { 'idempotency-key': messageId } : {}),
        },
        ...(method === 'POST' ? { body } : {}),
      }),
    );
  }

  return {
    appId: 'HTTP_CONNECTOR',
    async execute(payment, idempotencyKey, installation) {
      const { url, timeoutMs } = settings(installation.configuration);
      const body = JSON.stringify({
        idempotencyKey,
        paymentMethod: payment.paymentMethod,
        direction: payment.direction,
        amountMinor: payment.amountMinor,
        currency: payment.currency,
        country: payment.country,
        instrument: payment.financialInstrumentId,
        reference: { tenantId: payment.tenantId, orderRef: payment.orderRef, instructionRef: payment.instructionRef },
        callbackUrl: providerCallbackUrl(options.callbackBaseUrl, 'HTTP_CONNECTOR', payment.tenantId),
      });
      const response = await send(
        'POST',
        `${url}/payments`,
        idempotencyKey,
        body,
        installation.secrets.signingSecret,
        timeoutMs,
      );
      return checkedOutcome(answered(response), WHO);
    },
    async ledger(period, cursor, installation) {
      const { url, timeoutMs } = settings(installation.configuration);
      const query = new URLSearchParams({
        from: period.from.toISOString(),
        to: period.to.toISOString(),
        ...(cursor ? { cursor } : {}),
      });
      const response = await send(
        'GET',
        `${url}/payments?${query.toString()}`,
        randomUUID(),
        '',
        installation.secrets.signingSecret,
        timeoutMs,
      );
      return checkedLedgerPage(answered(response), WHO);
    },
    async getStatus(providerRef, installation) {
      const { url, timeoutMs } = settings(installation.configuration);
      const response = await send(
        'GET',
        `${url}/payments/${encodeURIComponent(providerRef)}`,
        randomUUID(),
        '',
        installation.secrets.signingSecret,
        timeoutMs,
      );
      return checkedOutcome(answered(response), WHO);
    },
    async refund(refund, idempotencyKey, installation): Promise<RefundOutcome> {
      const { url, timeoutMs } = settings(installation.configuration);
      const body = JSON.stringify({
        idempotencyKey,
        paymentRef: refund.paymentRef,
        amountMinor: refund.amountMinor,
        currency: refund.currency,
        ...(refund.reason ? { reason: refund.reason } : {}),
        reference: { tenantId: refund.tenantId, orderRef: refund.orderRef, instructionRef: refund.instructionRef },
        callbackUrl: providerCallbackUrl(options.callbackBaseUrl, 'HTTP_CONNECTOR', refund.tenantId),
      });
      const response = await send(
        'POST',
        `${url}/refunds`,
        idempotencyKey,
        body,
        installation.secrets.signingSecret,
        timeoutMs,
      );
      return checkedRefund(answered(response), WHO);
    },
    async getRefundStatus(providerRef, installation): Promise<RefundOutcome> {
      const { url, timeoutMs } = settings(installation.configuration);
      const response = await send(
        'GET',
        `${url}/refunds/${encodeURIComponent(providerRef)}`,
        randomUUID(),
        '',
        installation.secrets.signingSecret,
        timeoutMs,
      );
      return checkedRefund(answered(response), WHO);
    },
    async findByIdempotencyKey(idempotencyKey, installation) {
      const { url, timeoutMs } = settings(installation.configuration);
      const response = await send(
        'GET',
        `${url}/payments?idempotencyKey=${encodeURIComponent(idempotencyKey)}`,
        randomUUID(),
        '',
        installation.secrets.signingSecret,
        timeoutMs,
      );
      if (saysNoPayment(response.statusCode, response.body)) return undefined;
      return checkedOutcome(answered(response), WHO);
    },
    hostedForms: {
      origin: (installation) => new URL(settings(installation.configuration).url).origin,
      async open(request, installation, tenantId) {
        const { url, timeoutMs } = settings(installation.configuration);
        const response = await send(
          'POST',
          `${url}/hosted-sessions`,
          randomUUID(),
          JSON.stringify({
            ...request,
            callbackUrl: providerCallbackUrl(options.callbackBaseUrl, 'HTTP_CONNECTOR', tenantId),
          }),
          installation.secrets.signingSecret,
          timeoutMs,
        );
        const session = checkedSession(answered(response), WHO);
        // The payment page lets its form go to the provider's origin alone.
        if (new URL(session.url).origin !== new URL(url).origin)
          throw new MalformedAnswerError(`${WHO} answered a hosted form on another origin than its url`);
        return session;
      },
      async exchange(sessionId, ref, installation) {
        const { url, timeoutMs } = settings(installation.configuration);
        const response = await send(
          'POST',
          `${url}/hosted-sessions/${encodeURIComponent(sessionId)}/exchange`,
          randomUUID(),
          JSON.stringify({ ref }),
          installation.secrets.signingSecret,
          timeoutMs,
        );
        return checkedTokenised(answered(response), WHO);
      },
    },
    mandateCallbacks: {
      mandateRefOf: (rawBody) => mandateNewsOf(parseJson(rawBody))?.mandateRef,
      verify(rawBody, headers, installation) {
        return verifiedBy(installation.secrets.signingSecret, rawBody, headers)
          ? mandateNewsOf(parseJson(rawBody))
          : undefined;
      },
    },
    callbackReference(rawBody): CallbackReference | undefined {
      const body = parseJson<ProviderCallbackBody>(rawBody);
      return callbackReferenceOf(body?.providerRef, body?.reference);
    },
    verifyCallback(rawBody, headers, installation): CallbackResult | undefined {
      if (!verifiedBy(installation.secrets.signingSecret, rawBody, headers)) return undefined;
      return finalResult(parseJson<ProviderCallbackBody>(rawBody), WHO);
    },
  };
}

/** Whether a callback carries a Standard Webhooks signature of the installation's signing secret. */
function verifiedBy(secret: string | undefined, rawBody: string, headers: Record<string, string | undefined>): boolean {
  if (!secret) return false;
  try {
    new Webhook(secret.replace(/^whsec_/, '')).verify(rawBody, {
      'webhook-id': headers['webhook-id'] ?? '',
      'webhook-timestamp': headers['webhook-timestamp'] ?? '',
      'webhook-signature': headers['webhook-signature'] ?? '',
    });
    return true;
  } catch {
    return false;
  }
}

function settings(configuration: Record<string, unknown>): { url: string; timeoutMs: number } {
  return {
    url: String(configuration.url).replace(/\/+$/, ''),
    timeoutMs: typeof configuration.timeoutMs === 'number' ? configuration.timeoutMs : 10_000,
  };
}

function answered(response: Response<ProviderAnswer>): ProviderAnswer {
  const { statusCode } = response;
  if (statusCode >= 200 && statusCode < 300) return response.body;
  if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
    throw new ProviderRejectedError(
      `http_${statusCode}`,
      `the tenant's provider refused the request with ${statusCode}`,
    );
  }
  throw new Error(`the tenant's provider answered ${statusCode}`);
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
