// One webhook delivery (ARCHITECTURE.md, "Webhooks"): an event to one endpoint, tried on the
// schedule until it succeeds, is refused for good, or the schedule ends. A workflow of its own, on
// a task queue of its own, so a slow or dead endpoint never holds up a payment.
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { WebhookActivities, WebhookDeliveryInput } from '../contract.js';

// One try per activity; the activity is retried only when it could not sign or record its try (the
// endpoint's secret unreadable on this worker, the database), and the endpoint's own failures come
// back as outcomes, on the delivery schedule.
const ATTEMPT = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
} as const;
const { attemptDelivery } = proxyActivities<WebhookActivities>(ATTEMPT);

export async function webhookDeliveryWorkflow({ deliveryId, firstAttempt = 1 }: WebhookDeliveryInput): Promise<string> {
  for (let attempt = firstAttempt; ; attempt += 1) {
    const outcome = await attemptDelivery.executeWithOptions({ ...ATTEMPT, summary: `attempt ${attempt}` }, [
      { deliveryId, attempt },
    ]);
    if (outcome.done) return outcome.status;
    await sleep(outcome.retryInMs, { summary: `attempt ${attempt + 1}` });
  }
}
