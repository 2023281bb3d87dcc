/** The task queue of order workflows and their activities. */
export const PAYMENTS_TASK_QUEUE = 'payments';

/** Apps whose provider the tenant runs itself: how fast (or whether) it answers is out of our hands. */
export const TENANT_HOSTED_APPS: readonly string[] = ['HTTP_CONNECTOR'];

/**
 * Where calls to tenant-hosted providers run: a task queue (and activity slots) beside the order's
 * own, so that one tenant's slow or hostile provider never takes the place of another's payments.
 */
export function tenantHostedQueue(orderQueue: string): string {
  return `${orderQueue}-tenant-hosted`;
}

/** One workflow per order: starting it twice is refused, so an order can never run twice. */
export function orderWorkflowId(tenantId: string, orderRef: string): string {
  return `order/${tenantId}/${orderRef}`;
}

/** What every key of one instruction's calls begins with, and no other instruction's (refs hold no ':'). */
export function instructionKeyPrefix(tenantId: string, orderRef: string, instructionRef: string): string {
  return `${tenantId}:${orderRef}:${instructionRef}:`;
}

/** Stable per attempt, so a retried activity or a replayed call reaches the provider with the same key. */
export function paymentIdempotencyKey(
  tenantId: string,
  orderRef: string,
  instructionRef: string,
  attempt: number,
): string {
  return `${instructionKeyPrefix(tenantId, orderRef, instructionRef)}${attempt}`;
}

/** Stable per refund: a retried call reaches the provider with the same key, and two refunds never share one. */
export function refundIdempotencyKey(
  tenantId: string,
  orderRef: string,
  instructionRef: string,
  number: number,
): string {
  return `${instructionKeyPrefix(tenantId, orderRef, instructionRef)}refund:${number}`;
}
