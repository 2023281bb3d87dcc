// One refund's lifecycle as data and pure functions (ARCHITECTURE.md, "After settlement"): like a
// payment's, its idempotency key never changes, so an unanswered call is asked again under it and
// a refund is never made twice. No Temporal API here; instruction-loops.ts runs it.
import type { Refund, RefundStatus } from '../../domain/refund.js';
import { speaksOfUnknownOutcome, type RefundOutcome, type RefundResult } from '../../domain/payment-outcome.js';
import { callDue, STATUS_POLL_DELAYS_MS, UNANSWERED_RETRY_MS } from './provider-waits.js';

/** A refund as its order's workflow carries it: the declared shape, and how its loop keeps its place. */
export interface RefundMachine extends Refund {
  /** Provider calls made. */
  attempts: number;
  /** A call is under way: its answer, not a tenant admin, says how the refund ends. */
  calling?: boolean;
  /** A call went unanswered (or was refused under a key that may have reached the provider): asked again later, same key. */
  unanswered: boolean;
  /** When to call again. */
  retryAt?: string;
  /**
   * The provider refunds later: its reference, when to ask if no callback came, the callback's result
   * once it came, and why the provider last refused for good to say how it ended (then a tenant admin
   * may resolve it).
   */
  pending?: { providerRef: string; polls: number; nextPollAt: string; result?: RefundResult; refused?: string };
  /** Bumped by a result from outside, so a wait re-plans at once. */
  revision: number;
  /** The status its last event told. */
  toldStatus?: RefundStatus;
}

export type RefundStep =
  | { kind: 'done' }
  | { kind: 'wait'; until?: string; why: string }
  | { kind: 'call' }
  | { kind: 'finish'; result: RefundResult }
  | { kind: 'ask'; providerRef: string };

export function decideRefund(refund: RefundMachine, nowMs: number): RefundStep {
  const due = (at: string | undefined) => at === undefined || Date.parse(at) <= nowMs;
  if (refund.status !== 'PENDING') return { kind: 'done' };
  if (refund.pending?.result) return { kind: 'finish', result: refund.pending.result };
  if (refund.pending) {
    return due(refund.pending.nextPollAt)
      ? { kind: 'ask', providerRef: refund.pending.providerRef }
      : { kind: 'wait', until: refund.pending.nextPollAt, why: 'awaits the provider' };
  }
  return due(refund.retryAt) ? { kind: 'call' } : { kind: 'wait', until: refund.retryAt, why: 'is asked again' };
}

/** What became of a refund call, from the workflow's side. */
export type RefundCallResult =
  | RefundOutcome
  | { status: 'UNANSWERED' }
  /** Refused before the key could have reached the provider: nothing was refunded. */
  | { status: 'REJECTED'; code: string }
  /** Refused under a key an earlier unanswered call may have refunded with, or answered with other money than asked. */
  | { status: 'UNKNOWN'; code: string; providerRef?: string };

/** Moves the refund on from a call's (or a callback's) result; true when it ended (SUCCEEDED or FAILED). */
export function applyRefundResult(refund: RefundMachine, result: RefundCallResult, nowMs: number): boolean {
  const now = new Date(nowMs).toISOString();
  refund.retryAt = undefined;
  switch (result.status) {
    case 'SUCCEEDED':
      Object.assign(refund, { status: 'SUCCEEDED', providerRef: result.providerRef, succeededAt: now });
      // An unanswered call before it is over: its code would still read as an unknown outcome.
      refund.failureCode = undefined;
      refund.unanswered = false;
      refund.pending = undefined;
      return true;
    case 'FAILED':
    case 'REJECTED':
      Object.assign(refund, { status: 'FAILED', failureCode: result.code.slice(0, 64), failedAt: now });
      if ('providerRef' in result && result.providerRef) refund.providerRef = result.providerRef;
      refund.unanswered = false;
      refund.pending = undefined;
      return true;
    case 'PENDING':
      refund.unanswered = false;
      // Answered under its key: the outcome is no longer unknown (nor resolvable), only pending.
      if (speaksOfUnknownOutcome(refund.failureCode)) refund.failureCode = undefined;
      refund.providerRef = result.providerRef;
      refund.pending = {
        providerRef: result.providerRef,
        polls: 0,
        nextPollAt: new Date(nowMs + STATUS_POLL_DELAYS_MS[0]).toISOString(),
      };
      return false;
    case 'UNANSWERED':
    case 'UNKNOWN':
      // It may have been refunded under the key: the key is kept, and the provider asked again later.
      refund.unanswered = true;
      // Not believed, but the provider's name for the refund: its callback is known by it.
      if (result.status === 'UNKNOWN' && result.providerRef) refund.providerRef = result.providerRef;
      refund.failureCode =
        result.status === 'UNANSWERED' ? 'provider_unavailable' : `outcome_unknown:${result.code}`.slice(0, 64);
      refund.retryAt = new Date(nowMs + UNANSWERED_RETRY_MS).toISOString();
      return false;
  }
}

/**
 * Whether a provider's callback is for this refund of unknown outcome, by the reference the provider
 * stated, through the refund's app, between its calls: a prompt to call again under the key now
 * (like a payment's, speaksOfUnknown).
 */
export function speaksOfUnknownRefund(
  refund: RefundMachine,
  result: { providerRef: string; appId: string },
  instructionAppId: string,
): boolean {
  return (
    refund.status === 'PENDING' &&
    refund.unanswered &&
    !refund.calling &&
    refund.providerRef === result.providerRef &&
    refundAppOf(refund, instructionAppId) === result.appId
  );
}

/**
 * The app a refund is called, asked about and called back through: the one that took its payment, or,
 * for a refund from before that was kept (REFUND_KEEPS_ITS_APP), the instruction's app of the moment.
 */
export function refundAppOf(refund: RefundMachine, instructionAppId: string): string {
  return refund.appId ?? instructionAppId;
}

/**
 * Why a tenant admin cannot resolve the refund, if they cannot: only a refund of unknown outcome (its
 * call unanswered, or refused under a key that may have refunded), or one PENDING whose provider
 * refused for good to say how it ended, between calls, is theirs to end.
 */
export function refundResolutionRefusal(refund: RefundMachine, nowMs: number): string | undefined {
  const which = `refund ${refund.number} of ${refund.instructionRef}`;
  if (refund.status !== 'PENDING') return `${which} is ${refund.status}; only a refund of unknown outcome is resolved`;
  if (!refund.unanswered && !refund.pending?.refused) {
    return `${which} is PENDING at its provider, which will say how it ends; only a refund of unknown outcome is resolved`;
  }
  if (refund.calling || callDue(refund, nowMs))
    return `the provider is being asked about ${which} right now; resolve it once that call has ended`;
  // Taken in the same workflow task as the provider's word, before the loop applies it: not dropped.
  if (refund.pending?.result) return `the provider has just said how ${which} ended`;
  return undefined;
}

/** The refund fields events, the read model and the API show. */
export function refundOf(refund: RefundMachine): Refund {
  const {
    attempts: _a,
    calling: _c,
    unanswered: _u,
    retryAt: _r,
    pending: _p,
    revision: _v,
    toldStatus: _t,
    ...shown
  } = refund;
  return shown;
}
