/** The task queue of order workflows and their activities. */
export const PAYMENTS_TASK_QUEUE = 'payments';

/** One workflow per order: starting it twice is refused, so an order can never run twice. */
export function orderWorkflowId(tenantId: string, orderRef: string): string {
  return `order/${tenantId}/${orderRef}`;
}

/** Stable per attempt, so a retried activity or a replayed call reaches the provider with the same key. */
export function paymentIdempotencyKey(
  tenantId: string,
  orderRef: string,
  instructionRef: string,
  attempt: number,
): string {
  return `${tenantId}:${orderRef}:${instructionRef}:${attempt}`;
}
