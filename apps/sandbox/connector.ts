import type { Got } from 'got';
import type { AppConnector } from '../app-connector.js';
import type { PaymentOutcome } from '../../domain/payment-outcome.js';

interface SandboxPaymentBody {
  id: string;
  status: 'SETTLED' | 'DECLINED';
  declineCode?: string;
  retryable?: boolean;
  createdAt: string;
}

/**
 * Talks to the sandbox provider over HTTP. got's own retries are off: the activity's retry policy
 * is the one place that decides how often a payment call is repeated.
 */
export function createSandboxConnector(http: Got, baseUrl: string): AppConnector {
  const client = http.extend({ prefixUrl: baseUrl, retry: { limit: 0 }, timeout: { request: 10_000 } });
  return {
    appId: 'sandbox',
    async execute(payment, idempotencyKey) {
      const body = await client
        .post('v1/payments', {
          headers: { 'idempotency-key': idempotencyKey },
          json: {
            direction: payment.direction,
            amountMinor: payment.amountMinor,
            currency: payment.currency,
            instrument: payment.financialInstrumentId,
          },
        })
        .json<SandboxPaymentBody>();
      return toOutcome(body);
    },
    async getStatus(providerRef) {
      return toOutcome(await client.get(`v1/payments/${encodeURIComponent(providerRef)}`).json<SandboxPaymentBody>());
    },
  };
}

function toOutcome(body: SandboxPaymentBody): PaymentOutcome {
  if (body.status === 'SETTLED') return { status: 'SETTLED', providerRef: body.id };
  return { status: 'DECLINED', providerRef: body.id, code: body.declineCode ?? 'declined', retryable: body.retryable ?? false };
}
