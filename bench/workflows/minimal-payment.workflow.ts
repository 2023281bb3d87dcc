// The baseline of the due-burst benchmarks: the least a scheduled payment can be on Temporal. It
// sleeps to the due instant, makes one payment call, and completes.
import { proxyActivities, sleep } from '@temporalio/workflow';

export interface MinimalPaymentActivities {
  /** One card payment at the sandbox provider; answers when it was settled (epoch ms). */
  charge(idempotencyKey: string, reference: string): Promise<number>;
}

/** When the minimal workflow's payment was settled, by two clocks (epoch ms). */
export interface MinimalSettlement {
  /** The provider answered: the activity's clock, before its answer reaches the server. */
  answeredAt: number;
  /**
   * The workflow took the answer: the start of the workflow task that received it. An order stamps
   * its instruction's `settledAt` at the same point (workflow time when it applies the answer), so
   * this is the baseline an order's lag to SETTLED compares with.
   */
  takenAt: number;
}

const { charge } = proxyActivities<MinimalPaymentActivities>({ startToCloseTimeout: '1 minute' });

export async function minimalPaymentWorkflow(dueAtMs: number, reference: string): Promise<MinimalSettlement> {
  await sleep(Math.max(0, dueAtMs - Date.now()));
  const answeredAt = await charge(`minimal:${reference}`, reference);
  return { answeredAt, takenAt: Date.now() };
}
