import type { InstructionStatus } from './instruction-status.js';

/** Every event the platform records and sends (ARCHITECTURE.md, "Webhooks"). */
export const EVENT_TYPES = [
  'order.created',
  'order.completed',
  'order.completed_with_failures',
  'order.cancelled',
  'instruction.upcoming',
  'instruction.opened',
  'instruction.processing',
  'instruction.settled',
  'instruction.late',
  'instruction.failed',
  'instruction.cancelled',
  'instruction.amended',
  'instruction.returned',
  'refund.created',
  'refund.succeeded',
  'refund.failed',
  'mandate.created',
  'mandate.active',
  'mandate.cancelled',
  'mandate.expired',
  'webhook.endpoint.disabled',
  'webhook.delivery.exhausted',
  'reconciliation.mismatch',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The event each status tells, when an instruction reaches it (PENDING, where it starts, tells none). */
export const EVENT_OF_STATUS: Readonly<Partial<Record<InstructionStatus, EventType>>> = {
  OPEN: 'instruction.opened',
  PROCESSING: 'instruction.processing',
  SETTLED: 'instruction.settled',
  LATE: 'instruction.late',
  FAILED: 'instruction.failed',
  CANCELLED: 'instruction.cancelled',
  RETURNED: 'instruction.returned',
};

/**
 * The events that tell an instruction entered a status, and that status. Not the event's
 * instruction's: a change may have moved it on at once (a return fails the instruction, or opens it
 * again to collect, in the same step: its `instruction.returned` shows it FAILED or LATE).
 */
export const STATUS_OF_INSTRUCTION_EVENT: ReadonlyMap<EventType, InstructionStatus> = new Map(
  Object.entries(EVENT_OF_STATUS).map(([status, type]) => [type, status as InstructionStatus]),
);

/**
 * When each attempt of a delivery is made, counted from the one before: at once, then 5 seconds,
 * 5 minutes, 30 minutes, 2, 5, 10 and 10 hours (Svix's schedule). After the last, it has failed.
 */
export const DELIVERY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
];

/** An endpoint failing this long, with no success in between, is disabled. */
export const ENDPOINT_FAILING_LIMIT_MS = 5 * 24 * 3600_000;

/** A 2xx within this is a success; anything else, or nothing, is a failure. */
export const DELIVERY_TIMEOUT_MS = 15_000;

/** The longest a Retry-After may push an attempt back: a receiver cannot park a delivery for ever. */
export const MAX_RETRY_AFTER_MS = 24 * 3600_000;

/**
 * A failing streak whose last failure is older than this had no tries in between (no wait between two
 * tries of a delivery is longer than a day's Retry-After): the endpoint was quiet, not failing, and
 * its next failure starts the streak again.
 */
export const FAILING_STREAK_GAP_MS = MAX_RETRY_AFTER_MS + 3600_000;

/**
 * Webhook tries one account's tenants may have under way at once on a worker, of its 20
 * (worker/create-worker.ts). Without a cap, one tenant's endpoints that take the connection and never
 * answer held every slot for 15 s a try, and every other tenant's webhooks waited behind them. Per
 * account, not per tenant: an account makes as many tenants as it likes. Half, not less: one busy
 * endpoint answering in 150 ms already keeps 3 tries under way at 20 deliveries a second, and a cap
 * it reaches puts its tries off (bench/webhook-delivery: p99 6.2 s at 5 and 3, 0.4 s with no cap).
 */
export const ACCOUNT_WEBHOOK_SLOTS = 10;
/**
 * An endpoint whose answers take this long on average, or whose tries stay under way this long, is
 * slow: it holds a slot hundreds of times as long as a receiver answering in 20 ms. A third of the
 * timeout: one answering in 2 or 3 s is slow but answers, and keeps the slots it needs.
 */
export const SLOW_WEBHOOK_TRY_MS = 5_000;
/**
 * An endpoint that answered fast, but whose last answer (or timeout) on this worker is older than
 * this, is stale: its tries keep to the fast endpoints' slots, but two at a time until one is
 * answered, and that answer alone is its pace (so is a slow one's first answer after as long). A
 * fast mean from yesterday says little of a receiver now: one that has started to hang would
 * otherwise take its account's slots at its first tries, and its first timeouts would not undo the
 * mean. An endpoint with steady traffic is answered far more often than this; a quiet one sends two
 * at a time for one answer's wait.
 */
export const ENDPOINT_PACE_KEPT_MS = 5 * 60_000;
/**
 * Tries under way at once to one endpoint not yet known to answer fast (slow by SLOW_WEBHOOK_TRY_MS,
 * or not answered yet on this worker), or not lately (stale: ENDPOINT_PACE_KEPT_MS). One that answers
 * fast may have all its account's: a busy receiver at 150 ms a try keeps 6 under way at 40 deliveries
 * a second. One that never answers (a forgotten staging URL) holds two, and its account's other
 * endpoints keep theirs.
 */
export const SLOW_ENDPOINT_WEBHOOK_SLOTS = 2;
/**
 * Of an account's slots, those its endpoints not known to answer fast may hold: two accounts whose
 * every endpoint never answers hold 8 of a worker's 20, not all of them.
 */
export const ACCOUNT_SLOW_WEBHOOK_SLOTS = 4;

/** The first wait of a try put off because its account had every slot it may have; doubled at each put-off. */
const FIRST_DEFERRAL_MS = 100;
/**
 * The longest such wait: a try put off many times waits no longer than this once slots are free
 * again, and a thousand tries waiting cost some 17 put-offs a second.
 */
const LONGEST_DEFERRAL_MS = 60_000;

/**
 * How long a try put off for the `deferrals`-th time (1 for the first) waits before it asks again:
 * doubling, so an account with thousands of tries waiting does not keep the worker busy turning them
 * away, and jittered by `random`, so they do not all come back at once.
 */
export function deferralDelayMs(deferrals: number, random: number): number {
  const base = Math.min(FIRST_DEFERRAL_MS * 2 ** Math.max(0, deferrals - 1), LONGEST_DEFERRAL_MS);
  return Math.min(Math.round(base * (0.5 + random)), LONGEST_DEFERRAL_MS);
}

/**
 * The wait before the attempt after `attempt` (1-based), or undefined when it was the last. A
 * Retry-After longer than the schedule's wait is honoured, within reason.
 */
export function nextAttemptDelay(attempt: number, retryAfterMs?: number): number | undefined {
  const scheduled = DELIVERY_SCHEDULE_MS[attempt];
  if (scheduled === undefined) return undefined;
  return Math.max(scheduled, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

/** A Retry-After header (seconds, or an HTTP date) as milliseconds from `nowMs`, or undefined. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (!header) return undefined;
  if (/^\d{1,9}$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
