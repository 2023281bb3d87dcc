// What the webhooks wing's workflow, its activity and their starters agree on.

/** Webhook deliveries run on a task queue (and worker slots) of their own: a slow endpoint never takes a payment's place. */
export const WEBHOOKS_TASK_QUEUE = 'webhooks';

export function deliveryWorkflowId(deliveryId: string): string {
  return `webhook-delivery/${deliveryId}`;
}

export interface WebhookDeliveryInput {
  deliveryId: string;
  /**
   * The number of its first try: 1, or for a run restarted after one that stopped (webhooks/dispatcher.ts),
   * the try after the last it recorded, so the schedule goes on where it was and the log keeps its tries.
   */
  firstAttempt?: number;
}

export interface AttemptInput {
  deliveryId: string;
  /** 1 for the first try. */
  attempt: number;
}

/** What became of one try: done (delivered, refused for good, or nothing left to do), or to be tried again after a wait. */
export type AttemptOutcome =
  { done: true; status: 'SUCCEEDED' | 'FAILED' | 'SKIPPED' } | { done: false; retryInMs: number };

/** The activities a delivery workflow calls. Workflows import this file for its types only. */
export interface WebhookActivities {
  attemptDelivery(input: AttemptInput): Promise<AttemptOutcome>;
}
