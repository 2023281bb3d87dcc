import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WebhookDelivery } from '../db/entities/index.js';
import { deliveryWorkflowId, WEBHOOKS_TASK_QUEUE } from './contract.js';
import { webhookDeliveryWorkflow } from './workflow/webhook-delivery.workflow.js';

/** Starts at once; more wait their turn. */
const PARALLEL_STARTS = 8;
/** The longest a caller waits on Temporal for its starts: what is not started by then, the dispatcher starts. */
const START_BUDGET_MS = 5_000;

/**
 * Starts the workflow of each delivery, and marks it started. Never throws, and never waits on
 * Temporal beyond a few seconds: a delivery whose start fails or runs out of time is left for the
 * dispatcher's next round. Safe to call twice: the workflow id is the delivery's.
 */
export async function startDeliveries(
  client: Client,
  orm: MikroORM,
  deliveryIds: string[],
): Promise<{ started: string[]; failed: string[] }> {
  const started: string[] = [];
  const failed: string[] = [];
  const deadline = Date.now() + START_BUDGET_MS;
  const queue = [...deliveryIds];
  const startOne = async (deliveryId: string) => {
    try {
      await client.withDeadline(deadline, () =>
        client.workflow.start(webhookDeliveryWorkflow, {
          workflowId: deliveryWorkflowId(deliveryId),
          taskQueue: WEBHOOKS_TASK_QUEUE,
          args: [{ deliveryId }],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        }),
      );
      started.push(deliveryId);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) started.push(deliveryId);
      else failed.push(deliveryId);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_STARTS, queue.length) }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await startOne(next);
    }),
  );
  if (started.length > 0) {
    // Not marked (the database away): the dispatcher finds them again, and their starts answer "already started".
    await orm.em
      .fork()
      .nativeUpdate(WebhookDelivery, { id: { $in: started }, startedAt: null }, { startedAt: new Date() })
      .catch(() => undefined);
  }
  return { started, failed };
}
