// How long the workflow waits on a provider before asking again: for payments and refunds alike.

/** After an hour, an unanswered call is asked about again (the same key: it may have moved money). */
export const UNANSWERED_RETRY_MS = 60 * 60 * 1000;
/** A PENDING payment (or refund) whose callback has not come is asked about after these waits (the last repeats). */
export const STATUS_POLL_DELAYS_MS = [5 * 60_000, 30 * 60_000, 2 * 3600_000, 6 * 3600_000];

/**
 * A debit refused by us for want of an active mandate is tried again after these waits (then only
 * when the mandate's confirmation is signalled): the signal can miss an order whose read model did
 * not show the instrument yet, or whose call was under way when it came.
 */
export const MANDATE_RECHECK_DELAYS_MS = [10_000, 60_000, 10 * 60_000, 3600_000, 6 * 3600_000, 24 * 3600_000];

/**
 * A call put off this many times in a row (about five minutes of waits) ends as unanswered. Running
 * orders' histories depend on it, as on the waits below: a change goes behind a patch of its own.
 */
export const MAX_PUT_OFFS = 10;

/**
 * A call its worker put off (its tenant's account had its share of calls to tenant-hosted providers
 * under way) is made again after this wait: 1 s, doubling with each put-off, at most a minute, and
 * jittered by `random` (the workflow's own) so that an account's calls put off together do not all
 * come back at once. Each put-off costs the order's history a few events: not sooner than this.
 */
export function putOffWaitMs(putOffs: number, random: number): number {
  const base = Math.min(1_000 * 2 ** putOffs, 60_000);
  return Math.min(Math.round(base * (0.5 + random)), 60_000);
}

/** A payment or refund waiting for its hourly retry is called (or asked) now instead, its loop woken. */
export function retryNow(machine: { retryAt?: string; revision: number }, nowMs: number): void {
  machine.retryAt = new Date(nowMs).toISOString();
  machine.revision += 1;
}

/**
 * Whether a payment or refund of unknown outcome is to be called (or asked) again now: its hour has
 * passed, or its provider's callback prompted it. As good as under way: no tenant admin resolves it.
 */
export function callDue(machine: { unanswered: boolean; retryAt?: string }, nowMs: number): boolean {
  return machine.unanswered && machine.retryAt !== undefined && Date.parse(machine.retryAt) <= nowMs;
}

/**
 * The failure code a PENDING payment (or refund) shows while its provider refuses for good to say how
 * it ended, so that a tenant admin finds it resolvable in the read model, not only in the worker's log.
 */
export const STATUS_REFUSED = 'status_refused';

/**
 * A PENDING payment (or refund) whose provider was asked and said it is still pending, or gave no
 * answer: ask again later. `refused`: why it refused for good to say, if it did (a tenant admin may
 * then resolve it, and its failure code shows it; a refusal shown earlier is cleared).
 */
export function stillPending(
  waiting: { pending?: { refused?: string; polls: number; nextPollAt: string }; failureCode?: string },
  nowMs: number,
  refused?: string,
): void {
  const { pending } = waiting;
  if (!pending) return;
  pending.refused = refused;
  if (refused !== undefined) waiting.failureCode = `${STATUS_REFUSED}:${refused}`.slice(0, 64);
  else if (waiting.failureCode?.startsWith(`${STATUS_REFUSED}:`)) waiting.failureCode = undefined;
  pending.polls += 1;
  const delay = STATUS_POLL_DELAYS_MS[Math.min(pending.polls, STATUS_POLL_DELAYS_MS.length - 1)];
  pending.nextPollAt = new Date(nowMs + delay).toISOString();
}
