import got from 'got';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';
import type { MinimalPaymentActivities } from './minimal-payment.workflow.js';

/** The minimal workflow's one activity: a card payment of 1.00 at the sandbox provider, as the orders' payments are. */
export function minimalPaymentActivities(sandboxUrl: string, tenantId: string): MinimalPaymentActivities {
  const sandboxKey = newSandboxApiKey();
  return {
    async charge(idempotencyKey, reference) {
      await got.post(`${sandboxUrl}/v1/payments`, {
        headers: { authorization: `Bearer ${sandboxKey}`, 'idempotency-key': idempotencyKey },
        json: {
          appId: 'SANDBOX_CARD',
          paymentMethod: 'CARD',
          direction: 'DEBIT',
          amountMinor: '100',
          currency: 'EUR',
          country: 'FR',
          instrument: 'card_ok',
          reference: { tenantId, orderRef: 'minimal', instructionRef: reference },
        },
        retry: { limit: 0 },
        timeout: { request: 10_000 },
      });
      return Date.now();
    },
  };
}
