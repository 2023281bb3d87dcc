// The baseline of the due-burst benchmark: the least a scheduled payment can be on Temporal. It
// sleeps to the due instant, makes one payment call, and completes.
import { proxyActivities, sleep } from '@temporalio/workflow';

export interface MinimalPaymentActivities {
  /** One card payment at the sandbox provider; answers when it was settled (epoch ms). */
  charge(idempotencyKey: string, reference: string): Promise<number>;
}

const { charge } = proxyActivities<MinimalPaymentActivities>({ startToCloseTimeout: '1 minute' });

export async function minimalPaymentWorkflow(dueAtMs: number, reference: string): Promise<number> {
  await sleep(Math.max(0, dueAtMs - Date.now()));
  return charge(`minimal:${reference}`, reference);
}
