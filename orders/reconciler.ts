import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { dependencyOutage } from '../api/http/dependency-outage.js';
import { PaymentOrder } from '../db/entities/index.js';
import { startOrder } from './start-order.js';

const FAILED_START_BACKOFF_MS = 60_000;
/** Orphans read at once, oldest first. */
const PAGE_SIZE = 100;
/**
 * Pages taken in one round while each comes full and starts whole: a backlog (orders taken while
 * Temporal was away) drains without waiting a period between pages, and a round still ends.
 */
const DEFAULT_PAGES_PER_ROUND = 10;
/** Starts under way at once: enough to hide Temporal's round trip, few enough to leave the server room. */
const DEFAULT_STARTS_AT_ONCE = 8;

export interface ReconcilerOptions {
  orm: MikroORM;
  client: Client;
  logger: Logger;
  /** How old an order without a workflow must be before it counts as orphaned (the API may still be starting it). */
  graceMs: number;
  /** How an order is started (and marked started); tests replace it to make one start fail. */
  start?: (order: PaymentOrder) => Promise<void>;
  /** Starts under way at once (default 8), and pages a round may take (default 10): the orphan-drain benchmark compares 1 and 1. */
  startsAtOnce?: number;
  pagesPerRound?: number;
}

/**
 * Starts workflows for orders the API stored but did not get to start (a crash between the insert
 * and the start). Starting is idempotent, so a race with the API is harmless. One order that cannot
 * be started is logged and left for the next round; it never holds back the others.
 */
export class OrphanOrderReconciler {
  /** Orders whose start failed, and when to try each again: they wait their turn instead of filling every batch. */
  private readonly failing = new Map<string, number>();
  /** Whether the last start found Temporal unreachable: an outage is logged when it begins and when it ends, not at every round. */
  private temporalAway = false;

  constructor(private readonly options: ReconcilerOptions) {}

  /** How many orphaned orders had their workflow started this round; `stopping` ends it after the starts under way. */
  async runOnce(stopping?: AbortSignal): Promise<number> {
    let started = 0;
    const pages = this.options.pagesPerRound ?? DEFAULT_PAGES_PER_ROUND;
    for (let page = 0; page < pages && !stopping?.aborted; page++) {
      const taken = await this.runPage(stopping);
      started += taken.started;
      // A short page is the last; one with a failed start waits for the next round (and its backoff).
      if (taken.found < PAGE_SIZE || taken.started < taken.found || taken.temporalAway) break;
    }
    return started;
  }

  private async runPage(stopping?: AbortSignal): Promise<{ found: number; started: number; temporalAway: boolean }> {
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
      { populate: ['instructions'], limit: PAGE_SIZE, orderBy: { createdAt: 'asc' } },
    );
    const starts = pLimit(this.options.startsAtOnce ?? DEFAULT_STARTS_AT_ONCE);
    let started = 0;
    // Temporal unreachable: the starts not begun wait for the next round, where each would have waited
    // out its deadline here, and no order is held back for it (none of them is at fault).
    let temporalAway = false;
    await Promise.all(
      orphans.map((order) =>
        starts(async () => {
          // Stopping: the starts not begun are the next worker's (each would wait out its deadline in an outage).
          if (stopping?.aborted || temporalAway) return;
          try {
            await start(order);
            started += 1;
            this.failing.delete(order.id);
            this.temporalReached();
            logger.warn({ tenantId: order.tenantId, orderRef: order.orderRef }, 'started workflow for orphaned order');
          } catch (err) {
            if (dependencyOutage(err) === 'temporal') {
              temporalAway = true;
              this.temporalLost(err);
              return;
            }
            this.failing.set(order.id, Date.now() + FAILED_START_BACKOFF_MS);
            logger.error(
              { err, tenantId: order.tenantId, orderRef: order.orderRef },
              'could not start workflow for orphaned order; will retry',
            );
          }
        }),
      ),
    );
    return { found: orphans.length, started, temporalAway };
  }

  private temporalLost(err: unknown): void {
    if (this.temporalAway) return;
    this.temporalAway = true;
    this.options.logger.error({ err }, 'Temporal is unreachable: orphaned orders wait until it answers');
  }

  private temporalReached(): void {
    if (!this.temporalAway) return;
    this.temporalAway = false;
    this.options.logger.warn('Temporal answers again: starting orphaned orders');
  }
}
