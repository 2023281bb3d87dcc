import { ApplicationFailure, log } from '@temporalio/activity';
import type { AppConnector } from '../apps/app-connector.js';
import type { PaymentOutcome } from '../domain/payment-outcome.js';
import type { ExecutePaymentInput } from './order-activities.js';

/**
 * Asks the instruction's app to move the money. Network errors and 5xx propagate and are retried by
 * the activity's retry policy with the same idempotency key; declines come back as outcomes.
 */
export function createExecutePayment(apps: Map<string, AppConnector>) {
  return async function executePayment({ appId, request, idempotencyKey }: ExecutePaymentInput): Promise<PaymentOutcome> {
    const app = apps.get(appId);
    if (!app) throw ApplicationFailure.create({ type: 'UnknownApp', message: `no app ${appId}`, nonRetryable: true });
    const outcome = await app.execute(request, idempotencyKey);
    log.info('payment executed', {
      tenantId: request.tenantId,
      orderRef: request.orderRef,
      instructionRef: request.instructionRef,
      appId,
      status: outcome.status,
      providerRef: outcome.providerRef,
    });
    return outcome;
  };
}
