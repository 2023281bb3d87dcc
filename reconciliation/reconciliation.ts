import { randomUUID } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { RequestError } from 'got';
import type { AppConnector } from '../apps/app-connector.js';
import { MalformedAnswerError } from '../apps/provider-answer.js';
import { ProviderRejectedError } from '../domain/payment-outcome.js';
import type { ProviderPayment } from '../apps/provider-ledger.js';
import {
  AppInstallation,
  ReconciliationItem,
  ReconciliationRun,
  type MismatchKind,
  type ReconciliationTrigger,
} from '../db/entities/index.js';
import { loadInstalledApp } from '../db/installed-apps.js';
import type { SecretBox } from '../db/secret-box.js';
import type { InstalledApp } from '../domain/installed-app.js';
import { findApp } from '../domain/app-catalog.js';
import { isPayableCurrency } from '../domain/currency.js';
import { formatAmount } from '../domain/money.js';
import { reconciliationMismatches } from '../observability/metrics.js';
import { recordEvents, tenantEvent } from '../webhooks/outbox.js';
import { startDeliveries } from '../webhooks/start-deliveries.js';
import type { Mismatch, OurPayment } from './compare.js';
import {
  compareEntries,
  deleteEntries,
  differenceKey,
  stageOurs,
  stageTheirs,
  type Comparison,
  type Period,
} from './run-entries.js';

/** A ledger longer than this many pages is refused rather than read for ever. */
const MAX_LEDGER_PAGES = 10_000;
/**
 * How long before a period the provider's ledger is read too: a payment is in the ledger on the day
 * it was made, and in ours on the day it settled (a bank debit, days later). One that settles later
 * than this after it was made shows as missing.
 */
const LEDGER_LOOKBACK_MS = 7 * 86_400_000;
/** A day is reconciled this long after it ends: a payment settled at 23:59 has reached the read model by then. */
const SETTLING_GRACE_MS = 3600_000;
const DAY_MS = 86_400_000;
/** A scheduled day whose run failed (or whose worker died) is tried again this long after. */
const RETRY_AFTER_MS = 3600_000;
/**
 * The whole days a scheduled check looks back over: a day no worker ran (all were down, or its runs
 * failed until the next day began) is run late rather than never.
 */
const CATCH_UP_DAYS = 7;
/**
 * The ages (in days) at which a day already reconciled is compared again, beside the app's reversal
 * window: a day's run compares each payment once, as it then stood, so a payment still moving then
 * (a debit settling late) or reversed at the provider weeks later (a chargeback whose callback never
 * reached us) would otherwise never be found.
 */
const RECHECK_AFTER_DAYS = [7, 30];

/** Installations whose due runs are listed (and looked up) together: a bounded list and statement. */
const SCHEDULE_CHUNK = 500;

/** A scheduled run: a day of an installed app's (`age` 0), or its recheck `age` days after. */
interface DueRun {
  tenantId: string;
  appId: string;
  period: Period;
  key: string;
  /** How many days before the last whole day its day (or its recheck's) is due. */
  back: number;
  age: number;
}

/**
 * The runs due for `installed` by `lastDayEnd`: each day of the last CATCH_UP_DAYS since it was
 * installed, the latest first, each followed by its rechecks. A recheck's age is CATCH_UP_DAYS or
 * more: its day's own run is never due later than it (a recheck of a day no run compared, all
 * workers down that week, is its first comparison, and tells all it finds).
 */
function dueRuns(
  installed: Pick<AppInstallation, 'tenantId' | 'appId' | 'createdAt' | 'keyScopeChangedAt'>[],
  lastDayEnd: number,
): DueRun[] {
  const due: DueRun[] = [];
  for (let back = 0; back < CATCH_UP_DAYS; back++) {
    for (const { tenantId, appId, createdAt, keyScopeChangedAt } of installed) {
      // Nor a day before its key scope last changed: its payments are in the ledger of the provider
      // (or merchant) it sent to then, and the one it sends to now would miss every one of them.
      const since = Math.max(createdAt.getTime(), keyScopeChangedAt?.getTime() ?? 0);
      for (const age of [0, ...recheckAges(appId)]) {
        const dayEnd = lastDayEnd - (back + age) * DAY_MS;
        if (dayEnd <= since) continue;
        const period = { from: new Date(dayEnd - DAY_MS), to: new Date(dayEnd) };
        const day = `${appId}:${period.from.toISOString().slice(0, 10)}`;
        due.push({ tenantId, appId, period, key: age === 0 ? day : `${day}+${age}d`, back, age });
      }
    }
  }
  return due;
}

/** The ages at which an app's days are compared again: RECHECK_AFTER_DAYS and the end of its reversal window. */
function recheckAges(appId: string): number[] {
  const window = findApp(appId)?.reversalWindowDays ?? 0;
  // Never before its day's own run (dueRuns): a window shorter than the catch-up is rechecked at its end.
  const ages = [...RECHECK_AFTER_DAYS, ...(window > 0 ? [Math.max(window, CATCH_UP_DAYS)] : [])];
  return [...new Set(ages)];
}

/**
 * Why a run taken for dead failed, as its tenant reads it: it stopped beating (dayIsFree after an
 * hour, housekeeping after a day), which a stopped process and a stalled one look alike to.
 */
export const STOPPED_RUN_FAILURE = 'the run stopped making progress: the process running it stopped or stalled';

/** Why a run its worker stopped while shutting down failed; its day is free for the next worker at once. */
export const SHUT_DOWN_FAILURE = 'the worker running it shut down: the day is run again';

export interface ReconciliationDependencies {
  orm: MikroORM;
  apps: Map<string, AppConnector>;
  secretBox: SecretBox;
  /** Starts the deliveries of the mismatch events (the dispatcher starts any it misses). */
  temporal?: Client;
  logger: Logger;
  /** How long after a scheduled day's run failed (or its worker died) it is tried again; an hour unless told. */
  retryAfterMs?: number;
  /** Provider references compared at a time; COMPARE_PAGE unless told (a test pages through a few). */
  comparePage?: number;
  /** The most differences a run records one by one; MAX_RECORDED_MISMATCHES unless told (a test records a few). */
  maxRecordedMismatches?: number;
}

/**
 * Reconciliation (ARCHITECTURE.md, "Reconciliation"): the provider's own record of a period's
 * payments, read through the app's connector, compared with the read model. Each difference is
 * counted (the run's `mismatches`, `reconciliation_mismatches_total`); the first
 * MAX_RECORDED_MISMATCHES are kept as items of the run and told to the tenant as
 * `reconciliation.mismatch` events, in the transaction that ends the run.
 */
export class Reconciliation {
  constructor(private readonly deps: ReconciliationDependencies) {}

  /** Whether an app's provider keeps a ledger to reconcile against. */
  reconcilable(appId: string): boolean {
    return this.deps.apps.get(appId)?.ledger !== undefined;
  }

  /**
   * Reconciles one installed app of a tenant over [from, to). A scheduled run names its day in
   * `scheduleKey`; undefined when another process has that day's run already. Aborted (`signal`, its
   * worker shutting down), it stops at the next page it stages or compares, FAILED, its day freed.
   * `recheck`: the period was compared before; differences an earlier run of it recorded are counted,
   * not recorded or told again.
   */
  async run(
    tenantId: string,
    appId: string,
    period: { from: Date; to: Date },
    trigger: ReconciliationTrigger,
    scheduleKey: string | null = null,
    signal?: AbortSignal,
    recheck = false,
  ): Promise<ReconciliationRun | undefined> {
    const run = Object.assign(new ReconciliationRun(), {
      id: randomUUID(),
      tenantId,
      appId,
      periodFrom: period.from,
      periodTo: period.to,
      trigger,
      scheduleKey,
      createdAt: new Date(),
    });
    try {
      await this.deps.orm.em.fork().persistAndFlush(run);
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) return undefined;
      throw err;
    }
    const log = this.deps.logger.child({ tenantId, appId, runId: run.id });
    let comparison: Comparison;
    try {
      const installation = await loadInstalledApp(this.deps.orm.em.fork(), this.deps.secretBox, tenantId, appId);
      if (!installation) throw new NotReconcilable(`${appId} is not installed`);
      await this.stageLedger(run.id, appId, period, installation, signal);
      signal?.throwIfAborted();
      await stageOurs(this.deps.orm, run.id, tenantId, appId, period);
      comparison = await compareEntries(this.deps.orm, run.id, {
        page: this.deps.comparePage,
        keep: this.deps.maxRecordedMismatches,
        afterPage: () => {
          signal?.throwIfAborted();
          return this.beat(run.id);
        },
        ...(recheck ? { told: (differences: Mismatch[]) => this.toldBefore(run, differences) } : {}),
      });
    } catch (err) {
      if (signal?.aborted) {
        log.info('reconciliation stopped: the worker is shutting down');
        return this.finish(run, { status: 'FAILED', failure: SHUT_DOWN_FAILURE, scheduleKey: null });
      }
      // Said on the run, so that a day that could not be checked is not taken for a day without differences.
      log.warn({ err }, 'reconciliation could not compare');
      return this.finish(run, { status: 'FAILED', failure: failureOf(err) });
    }
    const finished = await this.finish(run, { status: 'SUCCEEDED', compared: comparison.compared }, comparison);
    const found = sumOf(comparison.found);
    if (finished.status === 'SUCCEEDED' && found > 0)
      log.warn(
        { mismatches: finished.mismatches, found, recorded: comparison.mismatches.length },
        'reconciliation found differences',
      );
    return finished;
  }

  /**
   * Of `differences`, those (differenceKey) an earlier run of the tenant's app recorded, whatever its
   * period: a bank debit is compared in the runs of the day it was made and of the day it settled.
   */
  private async toldBefore(run: ReconciliationRun, differences: Mismatch[]): Promise<Set<string>> {
    const told = await this.deps.orm.em.getConnection().execute<{ kind: MismatchKind; provider_ref: string }[]>(
      `select i.kind, i.provider_ref from reconciliation_item i join reconciliation_run r on r.id = i.run_id
        where i.tenant_id = ? and i.provider_ref in (?) and r.app_id = ?`,
      [run.tenantId, [...new Set(differences.map((d) => d.providerRef))], run.appId],
    );
    return new Set(told.map((item) => differenceKey({ kind: item.kind, providerRef: item.provider_ref })));
  }

  /**
   * Every installed app with a ledger, for each whole day (UTC) of the last CATCH_UP_DAYS once it
   * has settled, the latest first, from the day it was installed: at most one run per app and day,
   * whichever worker gets there first. And each such day again at each of its app's recheckAges,
   * once (within CATCH_UP_DAYS of it), telling only what is new. Says how many runs this worker
   * started, however they ended (one given up by another worker meanwhile included).
   */
  async runScheduled(now = new Date(), signal?: AbortSignal): Promise<number> {
    const lastDayEnd = Math.floor((now.getTime() - SETTLING_GRACE_MS) / DAY_MS) * DAY_MS;
    const installed = await this.deps.orm.em
      .fork()
      .find(AppInstallation, { appId: { $in: [...this.deps.apps.keys()].filter((a) => this.reconcilable(a)) } });
    let runs = 0;
    for (let at = 0; at < installed.length; at += SCHEDULE_CHUNK) {
      const due = dueRuns(installed.slice(at, at + SCHEDULE_CHUNK), lastDayEnd);
      if (due.length === 0) continue;
      // Those already reconciled, in one statement: most are, and each would otherwise be a query of its own.
      const done = await this.deps.orm.em.getConnection().execute<{ tenant_id: string; schedule_key: string }[]>(
        `select tenant_id, schedule_key from reconciliation_run
          where status = 'SUCCEEDED' and tenant_id in (?) and schedule_key in (?)`,
        [[...new Set(due.map((d) => d.tenantId))], [...new Set(due.map((d) => d.key))]],
      );
      const reconciled = new Set(done.map((run) => `${run.tenant_id} ${run.schedule_key}`));
      for (const { tenantId, appId, period, key, back, age } of due) {
        // A worker shutting down leaves the rest of the days' runs to the next worker (or its own next start).
        if (signal?.aborted) return runs;
        if (reconciled.has(`${tenantId} ${key}`)) continue;
        // An earlier day is caught up if no run has it; one whose runs failed through its own day is
        // not tried hourly for a week (a provider refusing the app's credentials would cost 7 an hour).
        if (!(await this.dayIsFree(tenantId, key, back === 0))) continue;
        if (await this.run(tenantId, appId, period, 'SCHEDULED', key, signal, age > 0)) runs++;
      }
    }
    return runs;
  }

  /**
   * Whether a day may be run: never run, or its run failed an hour ago or more (tried again, at most
   * hourly), or it has been RUNNING an hour without a beat (its worker died). The earlier run stays, as history,
   * without the day's key.
   */
  private async dayIsFree(tenantId: string, scheduleKey: string, retryFailed = true): Promise<boolean> {
    const em = this.deps.orm.em.fork();
    const run = await em.findOne(ReconciliationRun, { tenantId, scheduleKey });
    if (!run) return true;
    // By the clock the runs were stamped with, not the day asked for.
    const now = new Date();
    const anHourAgo = now.getTime() - (this.deps.retryAfterMs ?? RETRY_AFTER_MS);
    const failed = retryFailed && run.status === 'FAILED' && (run.finishedAt?.getTime() ?? 0) <= anHourAgo;
    const abandoned = run.status === 'RUNNING' && (run.heartbeatAt ?? run.createdAt).getTime() <= anHourAgo;
    if (!failed && !abandoned) return false;
    // Whichever worker frees it first runs it; the unique key stops a second.
    const freed = await em.nativeUpdate(
      ReconciliationRun,
      { id: run.id, status: run.status, scheduleKey },
      {
        scheduleKey: null,
        ...(abandoned ? { status: 'FAILED' as const, failure: STOPPED_RUN_FAILURE, finishedAt: now } : {}),
      },
    );
    return freed > 0;
  }

  /** The provider's ledger from LEDGER_LOOKBACK_MS before the period to its end, page by page into the run's entries. */
  private async stageLedger(
    runId: string,
    appId: string,
    period: Period,
    installation: InstalledApp,
    signal: AbortSignal | undefined,
  ) {
    const connector = this.deps.apps.get(appId);
    if (!connector?.ledger) throw new NotReconcilable(`${appId} keeps no ledger to reconcile against`);
    const read = { from: new Date(period.from.getTime() - LEDGER_LOOKBACK_MS), to: period.to };
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LEDGER_PAGES; page++) {
      signal?.throwIfAborted();
      const answer = await connector.ledger(read, cursor, installation);
      await stageTheirs(this.deps.orm, runId, period, answer.items);
      await this.beat(runId);
      if (!answer.nextCursor) return;
      cursor = answer.nextCursor;
    }
    throw new NotReconcilable(`the provider's ledger has more than ${MAX_LEDGER_PAGES} pages`);
  }

  /**
   * A beat, at every page a run stages or compares: a long run is not freed for dead (dayIsFree), and
   * one that was stops here. Staging ours is one statement, and does not beat.
   */
  private async beat(runId: string): Promise<void> {
    const beating = await this.deps.orm.em
      .fork()
      .nativeUpdate(ReconciliationRun, { id: runId, status: 'RUNNING' }, { heartbeatAt: new Date() });
    if (beating === 0) throw new GivenUp('the run was given up for stopped while it still ran');
  }

  private async finish(
    run: ReconciliationRun,
    outcome: Pick<ReconciliationRun, 'status'> &
      Partial<Pick<ReconciliationRun, 'compared' | 'failure' | 'scheduleKey'>>,
    { mismatches, found, toldBefore }: Pick<Comparison, 'mismatches' | 'found' | 'toldBefore'> = {
      mismatches: [],
      found: {},
      toldBefore: 0,
    },
  ): Promise<ReconciliationRun> {
    const now = new Date();
    const items = mismatches.map((m) =>
      Object.assign(new ReconciliationItem(), {
        id: randomUUID(),
        runId: run.id,
        tenantId: run.tenantId,
        kind: m.kind,
        providerRef: m.providerRef,
        orderRef: m.ours?.orderRef ?? null,
        instructionRef: m.ours?.instructionRef ?? null,
        ours: m.ours ? shownPayment(m.ours) : null,
        theirs: m.theirs ? shownPayment(m.theirs) : null,
        createdAt: now,
      }),
    );
    const closing = performance.now();
    const deliveries = await this.deps.orm.em.fork().transactional(async (em) => {
      // Locked against dayIsFree: a run given up for dead while it was still going (its entries then
      // left to housekeeping) must not write what it compared, which may have lost half its entries.
      const row = await em.findOneOrFail(ReconciliationRun, run.id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (row.status !== 'RUNNING') {
        Object.assign(run, row);
        return undefined;
      }
      // Every difference found is counted, the first MAX_RECORDED_MISMATCHES new ones recorded (compareEntries).
      Object.assign(row, outcome, { mismatches: sumOf(found) + toldBefore, recorded: items.length, finishedAt: now });
      for (const item of items) em.persist(item);
      await em.flush();
      Object.assign(run, row);
      return recordEvents(
        em,
        run.tenantId,
        items.map((item) =>
          tenantEvent('reconciliation.mismatch', `reconciliation:${item.id}`, run.tenantId, now, {
            runId: run.id,
            appId: run.appId,
            period: { from: run.periodFrom.toISOString(), to: run.periodTo.toISOString() },
            kind: item.kind,
            providerRef: item.providerRef,
            orderRef: item.orderRef,
            instructionRef: item.instructionRef,
            ours: item.ours,
            theirs: item.theirs,
          }),
        ),
      );
    });
    const log = this.deps.logger.child({ tenantId: run.tenantId, appId: run.appId, runId: run.id });
    if (deliveries === undefined) {
      log.warn({ status: run.status }, 'a reconciliation run was given up while it ran');
      return run;
    }
    const deleting = performance.now();
    // Out of the run's closing transaction: an 8-day ledger is many batches. What a failure leaves, housekeeping takes.
    await deleteEntries(this.deps.orm, run.id).catch((err: unknown) =>
      log.warn({ err }, 'could not delete a reconciliation run’s entries yet'),
    );
    const starting = performance.now();
    for (const [kind, n] of Object.entries(found)) reconciliationMismatches.inc({ app: run.appId, kind }, n ?? 0);
    const starts =
      this.deps.temporal && deliveries.length > 0
        ? await startDeliveries(this.deps.temporal, this.deps.orm, deliveries)
        : { started: [], failed: [] };
    // How long its end took, by part: at its cap, its items and their events are a thousand of each.
    log.info(
      {
        status: run.status,
        mismatches: run.mismatches,
        recorded: run.recorded,
        // Those not started in time are the dispatcher's.
        deliveries: { written: deliveries.length, started: starts.started.length },
        endMs: {
          closing: Math.round(deleting - closing),
          deletingEntries: Math.round(starting - deleting),
          startingDeliveries: Math.round(performance.now() - starting),
        },
      },
      'reconciliation run ended',
    );
    return run;
  }
}

/**
 * Why a run failed, in words safe to show the tenant: what the provider answered (or that it did
 * not), never a database error's text, which carries the statement and its values.
 */
function failureOf(err: unknown): string {
  if (err instanceof ProviderRejectedError || err instanceof MalformedAnswerError) return err.message.slice(0, 500);
  if (err instanceof RequestError) return `the provider did not answer (${err.code})`;
  if (err instanceof NotReconcilable) return err.message;
  return 'an internal error; it has been logged';
}

/** How many differences `found` counts, of every kind. */
function sumOf(found: Comparison['found']): number {
  return Object.values(found).reduce((sum, n) => sum + (n ?? 0), 0);
}

/** An app that cannot be reconciled (not installed, or its provider keeps no ledger). */
class NotReconcilable extends Error {}

/** A run that another worker freed for dead while it still ran: it ends without writing anything. */
class GivenUp extends Error {}

/** A payment as an item shows it: its money as a decimal amount, never minor units to misread. */
export function shownPayment(payment: OurPayment | ProviderPayment): Record<string, string> {
  // A currency the provider names and we do not pay in has no decimal places we know: its figure as sent.
  const amount = isPayableCurrency(payment.currency)
    ? formatAmount(BigInt(payment.amountMinor), payment.currency)
    : `${payment.amountMinor} minor units`;
  return {
    direction: payment.direction,
    amount,
    currency: payment.currency,
    status: payment.status,
  };
}
