import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { WebhookDelivery } from '../db/entities/index.js';
import { deliveryWorkflowId, WEBHOOKS_TASK_QUEUE } from './contract.js';
import { startDeliveries } from './start-deliveries.js';
import { webhookDeliveryWorkflow } from './workflow/webhook-delivery.workflow.js';

export interface DispatcherOptions {
  /** How old a delivery without a workflow must be before it counts as lost (its projection may still be starting it). */
  graceMs?: number;
  /**
   * How long past its next try's time a PENDING delivery must be before its run is looked at: a
   * live run tries within seconds of it, or within minutes when its try fails and Temporal retries it.
   */
  stalledAfterMs?: number;
  logger?: Logger;
}

/** Deliveries looked at per round of `reviveStalled`; the next round goes on after the last. */
const STALLED_PER_ROUND = 200;

/**
 * One round's look for stalled deliveries: PENDING, started, their next try due before `dueBefore`,
 * after the last one the round before looked at. One range of webhook_delivery_stalled_index, however
 * many deliveries the table holds (test/integration/pagination-plan.test.ts).
 */
export function stalledDeliveries(dueBefore: Date, after?: { due: Date; id: string }) {
  const sql = `select id, tenant_id, attempts, coalesce(next_attempt_at, started_at) as due from webhook_delivery
       where status = 'PENDING' and started_at is not null and coalesce(next_attempt_at, started_at) < ?
       ${after ? 'and (coalesce(next_attempt_at, started_at), id) > (?, ?)' : ''}
       order by coalesce(next_attempt_at, started_at), id limit ?`;
  return { sql, params: [dueBefore, ...(after ? [after.due, after.id] : []), STALLED_PER_ROUND] };
}

/**
 * The outbox's sweeper: starts the workflows of webhook deliveries whose start was lost (the
 * projection that recorded them could not reach Temporal, or died right after committing), and
 * starts again those whose run stopped before they ended.
 */
export class DeliveryDispatcher {
  private readonly graceMs: number;
  private readonly stalledAfterMs: number;
  private readonly logger?: Logger;
  /** Where the next round of `reviveStalled` goes on from: a long list of live runs cannot hide a stopped one behind them. */
  private stalledAfter?: { due: Date; id: string };

  constructor(
    private readonly orm: MikroORM,
    private readonly client: Client,
    options: DispatcherOptions = {},
  ) {
    this.graceMs = options.graceMs ?? 10_000;
    this.stalledAfterMs = options.stalledAfterMs ?? 15 * 60_000;
    this.logger = options.logger;
  }

  /** How many deliveries had their workflow started this round. */
  async runOnce(): Promise<number> {
    const lost = await this.orm.em
      .fork()
      .find(
        WebhookDelivery,
        { startedAt: null, createdAt: { $lt: new Date(Date.now() - this.graceMs) } },
        { fields: ['id'], limit: 500, orderBy: { createdAt: 'asc' } },
      );
    if (lost.length === 0) return 0;
    return (
      await startDeliveries(
        this.client,
        this.orm,
        lost.map((d) => d.id),
      )
    ).started.length;
  }

  /**
   * Starts a new run for each delivery still PENDING long after its next try was due whose run has
   * closed (terminated by an operator, or its history lost): nothing else would ever try it again.
   * The new run goes on from the try after the last recorded, so the schedule's eight tries are never
   * exceeded. A run still open (its try retried by Temporal: the endpoint's secret unreadable, the
   * worker away) is left to itself: the start under the same id is refused while it runs. Gives
   * back the deliveries started again. Stops between starts once `signal` is aborted (a shutdown),
   * and no start waits more than 10 s on Temporal.
   */
  async reviveStalled(signal?: AbortSignal): Promise<string[]> {
    const after = this.stalledAfter;
    const { sql, params } = stalledDeliveries(new Date(Date.now() - this.stalledAfterMs), after);
    const stalled = await this.orm.em
      .getConnection()
      .execute<{ id: string; tenant_id: string; attempts: number; due: Date }[]>(sql, params);
    const revived: string[] = [];
    for (const delivery of stalled) {
      if (signal?.aborted) return revived;
      const firstAttempt = delivery.attempts + 1;
      try {
        await this.client.withDeadline(Date.now() + 10_000, () =>
          this.client.workflow.start(webhookDeliveryWorkflow, {
            workflowId: deliveryWorkflowId(delivery.id),
            taskQueue: WEBHOOKS_TASK_QUEUE,
            args: [{ deliveryId: delivery.id, firstAttempt }],
            // Only over a run that has closed, whatever its end.
            workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          }),
        );
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) continue;
        throw err;
      }
      revived.push(delivery.id);
      this.logger?.warn(
        { tenantId: delivery.tenant_id, deliveryId: delivery.id, attempt: firstAttempt },
        'started again a webhook delivery whose run had stopped',
      );
    }
    const last = stalled.at(-1);
    this.stalledAfter = stalled.length < STALLED_PER_ROUND || !last ? undefined : { due: last.due, id: last.id };
    return revived;
  }
}
