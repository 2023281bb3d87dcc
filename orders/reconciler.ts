import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { PaymentOrder } from '../db/entities/index.js';
import { startOrder } from './start-order.js';

const FAILED_START_BACKOFF_MS = 60_000;

export interface ReconcilerOptions {
  orm: MikroORM;
  client: Client;
  logger: Logger;
  /** How old an order without a workflow must be before it counts as orphaned (the API may still be starting it). */
  graceMs: number;
  /** How an order is started (and marked started); tests replace it to make one start fail. */
  start?: (order: PaymentOrder) => Promise<void>;
}

/**
 * Starts workflows for orders the API stored but did not get to start (a crash between the insert
 * and the start). Starting is idempotent, so a race with the API is harmless. One order that cannot
 * be started is logged and left for the next round; it never holds back the others.
 */
export class OrphanOrderReconciler {
  /** Orders whose start failed, and when to try each again: they wait their turn instead of filling every batch. */
  private readonly failing = new Map<string, number>();

  constructor(private readonly options: ReconcilerOptions) {}

  /** How many orphaned orders had their workflow started this round. */
  async runOnce(): Promise<number> {
    const { orm, client, logger, graceMs, start = (order) => startOrder(client, orm, order) } = this.options;
    const em = orm.em.fork();
    const now = Date.now();
    const backingOff = [...this.failing].filter(([, retryAt]) => retryAt > now).map(([id]) => id);
    const orphans = await em.find(
      PaymentOrder,
      {
        workflowStartedAt: null,
        createdAt: { $lt: new Date(now - graceMs) },
        ...(backingOff.length ? { id: { $nin: backingOff } } : {}),
      },
      { populate: ['instructions'], limit: 100, orderBy: { createdAt: 'asc' } },
    );
    let started = 0;
    for (const order of orphans) {
      try {
        await start(order);
        started += 1;
        this.failing.delete(order.id);
        logger.warn({ tenantId: order.tenantId, orderRef: order.orderRef }, 'started workflow for orphaned order');
      } catch (err) {
        this.failing.set(order.id, Date.now() + FAILED_START_BACKOFF_MS);
        logger.error(
          { err, tenantId: order.tenantId, orderRef: order.orderRef },
          'could not start workflow for orphaned order; will retry',
        );
      }
    }
    return started;
  }
}
