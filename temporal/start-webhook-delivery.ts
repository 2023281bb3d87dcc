import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WebhookDelivery } from '../db/entities/index.js';

/** Webhook deliveries run on a task queue (and worker slots) of their own: a slow endpoint never takes a payment's place. */
export const WEBHOOKS_TASK_QUEUE = 'webhooks';

export function deliveryWorkflowId(deliveryId: string): string {
  return `webhook-delivery/${deliveryId}`;
}

/**
 * Starts the workflow of each delivery, and marks it started. Safe to call twice: the workflow id
 * is the delivery's. A delivery whose start fails is left for the dispatcher's next round.
 */
export async function startDeliveries(client: Client, orm: MikroORM, deliveryIds: string[]): Promise<{ started: string[]; failed: string[] }> {
  const started: string[] = [];
  const failed: string[] = [];
  for (const deliveryId of deliveryIds) {
    try {
      await client.workflow.start('webhookDeliveryWorkflow', {
        workflowId: deliveryWorkflowId(deliveryId),
        taskQueue: WEBHOOKS_TASK_QUEUE,
        args: [{ deliveryId }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      started.push(deliveryId);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) started.push(deliveryId);
      else failed.push(deliveryId);
    }
  }
  if (started.length > 0) await orm.em.fork().nativeUpdate(WebhookDelivery, { id: { $in: started }, startedAt: null }, { startedAt: new Date() });
  return { started, failed };
}
