import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { PaymentOrder } from '../db/entities/index.js';
import { startOrderWorkflow, workflowInputOf } from '../temporal/start-order-workflow.js';

export interface ReconcilerOptions {
  orm: MikroORM;
  client: Client;
  logger: Logger;
  /** How old an order without a workflow must be before it counts as orphaned (the API may still be starting it). */
  graceMs: number;
  intervalMs?: number;
}

/**
 * Starts workflows for orders the API stored but did not get to start (a crash between the insert
 * and the start). Starting is idempotent, so a race with the API is harmless.
 */
export class OrphanOrderReconciler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    const tick = () => {
      this.running = this.runOnce().catch((err) => {
        this.options.logger.error({ err }, 'orphan order reconciliation failed');
        return 0;
      });
      void this.running.then(() => {
        if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs ?? 5_000);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async runOnce(): Promise<number> {
    const em = this.options.orm.em.fork();
    const orphans = await em.find(
      PaymentOrder,
      { workflowStartedAt: null, createdAt: { $lt: new Date(Date.now() - this.options.graceMs) } },
      { populate: ['instructions'], limit: 100, orderBy: { createdAt: 'asc' } },
    );
    for (const order of orphans) {
      await startOrderWorkflow(this.options.client, workflowInputOf(order));
      order.workflowStartedAt = new Date();
      this.options.logger.warn({ tenantId: order.tenantId, orderRef: order.orderRef }, 'started workflow for orphaned order');
    }
    await em.flush();
    return orphans.length;
  }
}
