import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { dependencyOutage } from '../api/http/dependency-outage.js';
import { PaymentOrder } from '../db/entities/index.js';
import { START_DEADLINE_MS } from './contract/limits.js';
import { startOrder } from './start-order.js';

/** How long an order whose start failed waits before it is tried again. */
const FAILED_START_BACKOFF_SECONDS = 60;
/** Starts of one page failing as if Temporal were away, its frontend answering, that stop the page (its history may be away). */
const STALLED_FAILURES = 3;
/** Added to a page's longest time for its claim: its statements, a slow pool. */
const CLAIM_MARGIN_SECONDS = 60;
/** How long the question whether Temporal answers may take. */
const REACHABLE_DEADLINE_MS = 2_000;
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
 * be started is logged and held back a minute; it never holds back the others. Each worker runs
 * one, and they claim their pages, so each orphan is started once between them.
 *
 * Temporal away (its frontend does not answer): the page begins no more starts, its orders are let
 * go, and the next rounds ask the frontend and claim nothing until it answers; logged when it begins
 * and when it ends. Starts failing so while the frontend answers (its history away, or orders too
 * large): the page stops after the third, those are held back, and one line says so for the page.
 */
export class OrphanOrderReconciler {
  /** Whether Temporal's frontend did not answer, and has not answered since. */
  private temporalAway = false;
  /** How long a page is claimed: longer than one whose every start waits out its deadline, and the question after. */
  private readonly claimSeconds: number;

  constructor(private readonly options: ReconcilerOptions) {
    const startsAtOnce = options.startsAtOnce ?? DEFAULT_STARTS_AT_ONCE;
    this.claimSeconds = Math.ceil(
      (Math.ceil(PAGE_SIZE / startsAtOnce) * START_DEADLINE_MS + REACHABLE_DEADLINE_MS) / 1000 + CLAIM_MARGIN_SECONDS,
    );
  }

  /** How many orphaned orders had their workflow started this round; `stopping` ends it after the starts under way. */
  async runOnce(stopping?: AbortSignal): Promise<number> {
    // Away at the last round: one question tells whether to try, instead of starts each waiting out their deadline.
    if (this.temporalAway) {
      if (!(await this.reachable())) return 0;
      this.temporalAway = false;
      this.options.logger.warn('Temporal answers again: starting orphaned orders');
    }
    let started = 0;
    const pages = this.options.pagesPerRound ?? DEFAULT_PAGES_PER_ROUND;
    for (let page = 0; page < pages && !stopping?.aborted; page++) {
      const taken = await this.runPage(stopping);
      started += taken.started;
      // A short page is the last; one with a failed start (or Temporal away) waits for the next round.
      if (taken.found < PAGE_SIZE || taken.started < taken.found) break;
    }
    return started;
  }

  private async runPage(stopping?: AbortSignal): Promise<{ found: number; started: number }> {
    const { orm, client, logger, start = (order) => startOrder(client, orm, order) } = this.options;
    const em = orm.em.fork();
    const { claimed, until } = await this.claimPage();
    if (claimed.length === 0) return { found: 0, started: 0 };
    // The claims this page wrote (its own, and each hold-back's): a let-go or hold-back touches an
    // order only under one of them, never the claim of a worker that took it after this page's ran out.
    const mine = [until];
    const starts = pLimit(this.options.startsAtOnce ?? DEFAULT_STARTS_AT_ONCE);
    let started = 0;
    // A start failing as if Temporal were away: Temporal's frontend is asked once a page whether it
    // answers. Not answering, it is away (below). Answering, the order's start failed (a large input, a
    // shard away): it is held back, unless the page has STALLED_FAILURES of them, which stop the page.
    let answers: Promise<boolean> | undefined;
    let failedAsIfAway = 0;
    // Orders held back for a failure as if Temporal were away: let go after all if it turns out away.
    const heldAsIfAway: string[] = [];
    // Temporal away, or the page stopping: the starts not begun wait for the next round or worker (each
    // would wait out its deadline), and none of them is held back for it.
    const letGo: string[] = [];
    const stalled = () => failedAsIfAway >= STALLED_FAILURES;
    let orphans: PaymentOrder[];
    try {
      orphans = await em.find(
        PaymentOrder,
        { id: { $in: claimed } },
        { populate: ['instructions'], orderBy: { createdAt: 'asc' } },
      );
    } catch (err) {
      // The page was not read: all of it waits for the next round, not for its claim to run out.
      await this.letGo(claimed, mine);
      throw err;
    }
    try {
      const settled = await Promise.allSettled(
        orphans.map((order) =>
          starts(async () => {
            if (stopping?.aborted || this.temporalAway || stalled()) {
              letGo.push(order.id);
              return;
            }
            try {
              await start(order);
              started += 1;
              logger.warn(
                { tenantId: order.tenantId, orderRef: order.orderRef },
                'started workflow for orphaned order',
              );
            } catch (err) {
              const asIfAway = dependencyOutage(err) === 'temporal';
              if (asIfAway) {
                failedAsIfAway += 1;
                // The first such failure of the page asks; a page found stalled meanwhile does not wait for the answer.
                if (this.temporalAway || (!stalled() && !(await (answers ??= this.reachable())))) {
                  if (!this.temporalAway)
                    logger.error({ err }, 'Temporal is unreachable: orphaned orders wait until it answers');
                  this.temporalAway = true;
                  letGo.push(order.id);
                  return;
                }
                heldAsIfAway.push(order.id);
              }
              const held = await this.holdBack(order.id, until, mine).catch((holdErr: unknown) => {
                logger.warn({ err: holdErr, orderRef: order.orderRef }, 'could not hold back a failed start');
                return true;
              });
              if (!held) {
                // Started since, or this page outlasted its claim and the worker that took the order starts it.
                logger.warn(
                  { err, tenantId: order.tenantId, orderRef: order.orderRef },
                  'could not start workflow for orphaned order; it was started, or another worker took it, since',
                );
              } else if (!(asIfAway && stalled())) {
                // Once the page has stalled, it says so once for all of them (below).
                logger.error(
                  { err, tenantId: order.tenantId, orderRef: order.orderRef },
                  'could not start workflow for orphaned order; will retry in a minute',
                );
              }
            }
          }),
        ),
      );
      // Nothing above throws on purpose (a logger might): such an order keeps its claim, and is said.
      for (const result of settled)
        if (result.status === 'rejected') logger.error({ err: result.reason }, 'an orphaned order’s start went wrong');
      if (stalled() && !this.temporalAway) {
        logger.error(
          { failed: failedAsIfAway },
          'starts of orphaned orders fail as if Temporal were away while it answers: this page stopped, and they wait a minute (or for a worker that took them since)',
        );
      }
    } finally {
      if (this.temporalAway) letGo.push(...heldAsIfAway);
      await this.letGo(letGo, mine);
    }
    return { found: claimed.length, started };
  }

  /**
   * Claims the oldest orphans no other worker is starting (or waiting on after a failed start), for
   * longer than the page can take: a start that succeeds marks its order started, one that fails is
   * held back from its failure, and a worker that dies lets go of its page when the claim runs out.
   * A page that outlasts its claim leaves the orders another worker took since to that worker.
   */
  private async claimPage(): Promise<{ claimed: string[]; until: string }> {
    // The claim's time as PostgreSQL wrote it (microseconds), so that this page can tell it apart.
    const rows = await this.options.orm.em.getConnection().execute<{ id: string; until: string }[]>(
      `update payment_order set start_claimed_until = now() + make_interval(secs => ?)
       where id in (
         select id from payment_order
         where workflow_started_at is null and created_at < ?
           and (start_claimed_until is null or start_claimed_until < now())
         order by created_at limit ? for update skip locked)
       returning id, start_claimed_until::text as until`,
      [this.claimSeconds, new Date(Date.now() - this.options.graceMs), PAGE_SIZE],
    );
    return { claimed: rows.map((row) => row.id), until: rows[0]?.until ?? '' };
  }

  /**
   * Orders of this page for the next round or worker to start at once, each under a claim this page
   * wrote (`mine`); a failure leaves them to their claim.
   */
  private async letGo(orderIds: string[], mine: string[]): Promise<void> {
    if (orderIds.length === 0) return;
    await this.options.orm.em
      .getConnection()
      .execute(
        `update payment_order set start_claimed_until = null
           where id in (?) and workflow_started_at is null and start_claimed_until in (?)`,
        [orderIds, mine],
      )
      .catch((err: unknown) => this.options.logger.warn({ err }, 'could not let go of orphaned orders'));
  }

  /**
   * A failed start waits its backoff from its failure, whichever worker looks next; its hold is added
   * to `mine`. False when the page's claim no longer stands: the order was started, or another worker
   * took it, since.
   */
  private async holdBack(orderId: string, claim: string, mine: string[]): Promise<boolean> {
    const rows = await this.options.orm.em.getConnection().execute<{ until: string }[]>(
      `update payment_order set start_claimed_until = now() + make_interval(secs => ?)
         where id = ? and workflow_started_at is null and start_claimed_until = ?
         returning start_claimed_until::text as until`,
      [FAILED_START_BACKOFF_SECONDS, orderId, claim],
    );
    if (rows[0]) mine.push(rows[0].until);
    return rows.length > 0;
  }

  /**
   * Whether Temporal's frontend answers a question that costs it nothing, within a couple of seconds;
   * an answer refusing it (an older server, a permission) is an answer.
   */
  private reachable(): Promise<boolean> {
    const { client } = this.options;
    return client.connection
      .withDeadline(Date.now() + REACHABLE_DEADLINE_MS, () => client.workflowService.getSystemInfo({}))
      .then(
        () => true,
        (err: unknown) => dependencyOutage(err) === undefined,
      );
  }
}
