// One instruction's lifecycle as data and pure functions (ARCHITECTURE.md, "Instruction lifecycle"):
// what it is waiting for, what it does next, and how an outcome or a change moves it. No Temporal
// API here, so the rules can be tested without a server; instruction-loops.ts runs them.
import {
  dueBeforeOpen,
  DUE_BEFORE_OPEN,
  offeredOption,
  type InstructionPlan,
  type InstructionProgress,
} from '../../domain/instruction.js';
import { canTransition, isAtRest, type InstructionStatus } from '../../domain/instruction-status.js';
import {
  RETRYABLE_RETURN_CODES,
  speaksOfUnknownOutcome,
  type PaymentOutcome,
  type ProviderResult,
  type Reversal,
} from '../../domain/payment-outcome.js';
import type { InstructionAmendment, SignalledResult } from '../contract/messages.js';
import { callDue, MANDATE_RECHECK_DELAYS_MS, STATUS_POLL_DELAYS_MS, UNANSWERED_RETRY_MS } from './provider-waits.js';
import { refundableMinor } from '../../domain/refund.js';
import type { RefundMachine } from './refund-machine.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Everything about one instruction, serialisable as it is: continue-as-new carries it in any state.
 * Its plan and progress are the instruction's declared shape; the rest is how the loop keeps its place.
 */
export interface InstructionMachine extends InstructionProgress {
  plan: InstructionPlan;
  /** Declines so far that were dunned: the position in the dunning schedule. */
  declines: number;
  /** Which idempotency key the next call uses (tenant:order:instruction:keyAttempt). */
  keyAttempt: number;
  /** The current key has reached the provider: a changed payment must use a new one. */
  keyUsed: boolean;
  /** The last call went unanswered: money may have moved under the current key, so it is asked before anything else. */
  unanswered: boolean;
  /** LATE: when to try again; absent, it waits for a change (an amend, a customer payment). */
  retryAt?: string;
  /** PROCESSING with the provider settling later: its reference, when to ask if no callback came, and the callback's result once it came. */
  pending?: {
    providerRef: string;
    polls: number;
    nextPollAt: string;
    result?: ProviderResult;
    /** A reversal of the payment that came before its settlement was applied (both while the loop was away). */
    reversal?: Reversal;
    /** The provider is being asked about it now: its answer, not a tenant admin, says how it ends. */
    asking?: boolean;
    /** Why the provider last refused for good to say how it ended (a 4xx, the app's credentials unreadable): a tenant admin may then resolve it. */
    refused?: string;
  };
  /** The customer chose to pay now, in the OPEN window (or while LATE). */
  payNow: boolean;
  /** The call under way is the customer's own payment: declined, it leaves the instruction to them to try again. */
  customerPaying?: boolean;
  /** Bumped by every change from outside (an update, a result), so a wait re-plans at once. */
  revision: number;
  /** Events recorded for it so far (their keys count them), and the status the last one told. */
  events: number;
  toldStatus: InstructionStatus;
  /** Refunds asked for, oldest first (carried from runs before refunds existed: absent, then none). */
  refunds: RefundMachine[];
  /** The payment (amount and charge date) the customer was last told of in advance (instruction.upcoming). */
  noticeFor?: string;
  /** The provider's reference of the payment last returned or charged back: it did settle, and a repeat of that is no news. */
  returnedRef?: string;
  /**
   * Whether its last payment returned was refunded in part or whole before it was taken back (or
   * taken back in part): its amount is then no longer what is owed, so it fails, and is not retried
   * (a retry would charge its whole amount). Absent: no return since this was kept, or retried since
   * (see retryRefusal).
   */
  refundedBeforeReturn?: boolean;
  /** Refusals in a row for want of an active mandate: the place in MANDATE_RECHECK_DELAYS_MS. */
  mandateChecks?: number;
}

/** What the order decided for every instruction: its dunning schedule, its returns policy, how long arrears wait. */
export interface InstructionPolicy {
  dunningDelaysMs: readonly number[];
  /** RECOLLECT: a payment returned with a retryable code is collected again on the dunning schedule. FAIL: it fails. */
  returnsPolicy: 'RECOLLECT' | 'FAIL';
  /** A LATE instruction with nothing planned fails `expired` after this; absent, it waits for ever (runs from before expiry). */
  arrearsExpiryMs?: number;
}

export function newMachine(plan: InstructionPlan): InstructionMachine {
  return {
    plan,
    status: 'PENDING',
    attempts: 0,
    declines: 0,
    keyAttempt: 1,
    keyUsed: false,
    unanswered: false,
    payNow: false,
    revision: 0,
    events: 0,
    toldStatus: 'PENDING',
    settledAmountMinor: '0',
    refundedAmountMinor: '0',
    returnedAmountMinor: '0',
    refunds: [],
  };
}

/**
 * A machine carried from a run of older code gets the fields added since: nothing of its money was
 * returned or refunded then, and a settled one settled once.
 */
export function upgradeMachine(machine: InstructionMachine): void {
  machine.settledAmountMinor ??= machine.status === 'SETTLED' ? machine.plan.amountMinor : '0';
  machine.refundedAmountMinor ??= '0';
  machine.returnedAmountMinor ??= '0';
  machine.refunds ??= [];
}

/** What the instruction's loop does next. */
export type Step =
  | { kind: 'done' }
  | { kind: 'wait'; until?: string; why: string }
  | { kind: 'open' }
  | { kind: 'late'; code: string }
  | { kind: 'expire' }
  | { kind: 'call' }
  | { kind: 'notify' }
  | { kind: 'settle'; result: ProviderResult }
  | { kind: 'ask'; providerRef: string };

/** Whether the instruction has something to pay with: an instrument's id, or a stored instrument. */
function paysWith(plan: Pick<InstructionPlan, 'financialInstrumentId' | 'instrumentId'>): boolean {
  return plan.financialInstrumentId !== undefined || plan.instrumentId !== undefined;
}

/** Why an instruction with nothing to pay with goes LATE at its charge date. */
function lateCodeOf(machine: InstructionMachine): string {
  return machine.failureCode === 'mandate_cancelled' || machine.failureCode === 'mandate_expired'
    ? machine.failureCode
    : 'no_financial_instrument';
}

/** An instruction pays with one instrument: naming one drops the other. */
function keepOneInstrument(
  plan: InstructionPlan,
  named: { financialInstrumentId?: string; instrumentId?: string },
): void {
  if (named.financialInstrumentId !== undefined) delete plan.instrumentId;
  if (named.instrumentId !== undefined) delete plan.financialInstrumentId;
}

/**
 * The payment as the customer is told of it in advance: its amount and charge date. Told again
 * when either changes (an amendment), never twice for the same.
 */
function noticeKey(plan: InstructionPlan): string {
  return `${plan.amountMinor}@${chargeDateOf(plan)}`;
}

/**
 * When the customer is to be told of the coming charge (instruction.upcoming): its notice period
 * before the charge date, by the option that pays it; undefined when there is nothing to tell (no
 * notice asked, or told already of this amount and date).
 */
function noticeAt(machine: InstructionMachine): string | undefined {
  const { plan } = machine;
  const days = offeredOption(plan.options, plan)?.preNotificationDays ?? 0;
  if (days <= 0 || machine.noticeFor === noticeKey(plan)) return undefined;
  return new Date(Date.parse(chargeDateOf(plan)) - days * DAY_MS).toISOString();
}

/** The customer has been told of the coming charge. */
export function applyNotice(machine: InstructionMachine): void {
  machine.noticeFor = noticeKey(machine.plan);
}

/** When an instruction is charged: its business day, or its due date when it has none. */
export function chargeDateOf(plan: Pick<InstructionPlan, 'dueAt' | 'chargeAt'>): string {
  return plan.chargeAt ?? plan.dueAt;
}

/** `arrearsExpiryMs`: how long LATE with nothing planned waits before it fails (absent: for ever). */
export function decide(machine: InstructionMachine, nowMs: number, arrearsExpiryMs?: number): Step {
  const { status, plan } = machine;
  const due = (at: string | undefined) => at !== undefined && Date.parse(at) <= nowMs;
  switch (status) {
    case 'SETTLED':
    case 'FAILED':
    case 'CANCELLED':
      return { kind: 'done' };
    case 'RETURNED':
      // Moved on by the returns policy in the same step that returned it; never waits here.
      return { kind: 'done' };
    case 'PENDING': {
      const notice = noticeAt(machine);
      if (notice !== undefined && due(notice)) return { kind: 'notify' };
      if (due(plan.openAt)) return { kind: 'open' };
      return notice !== undefined && Date.parse(notice) < Date.parse(plan.openAt)
        ? { kind: 'wait', until: notice, why: 'is told to its customer' }
        : { kind: 'wait', until: plan.openAt, why: 'opens' };
    }
    case 'OPEN': {
      if (machine.payNow) return { kind: 'call' };
      const notice = noticeAt(machine);
      if (notice !== undefined && due(notice)) return { kind: 'notify' };
      if (notice !== undefined) return { kind: 'wait', until: notice, why: 'is told to its customer' };
      // Charged on its business day (chargeAt), or on its due date when taken before business days.
      if (!due(chargeDateOf(plan))) return { kind: 'wait', until: chargeDateOf(plan), why: 'falls due' };
      // Nothing to pay with: for want of an instrument, or because the mandate it relied on ended.
      return paysWith(plan) ? { kind: 'call' } : { kind: 'late', code: lateCodeOf(machine) };
    }
    case 'LATE':
      if (machine.payNow || due(machine.retryAt)) {
        if (paysWith(plan)) return { kind: 'call' };
      } else if (machine.retryAt) {
        return { kind: 'wait', until: machine.retryAt, why: 'is retried' };
      }
      // Nothing planned: it waits for an amendment or a payment, until its arrears expire.
      if (arrearsExpiryMs === undefined || machine.lateAt === undefined)
        return { kind: 'wait', why: 'waits for an amendment or a payment' };
      {
        const expiresAt = new Date(Date.parse(machine.lateAt) + arrearsExpiryMs).toISOString();
        return due(expiresAt)
          ? { kind: 'expire' }
          : { kind: 'wait', until: expiresAt, why: 'waits for an amendment or a payment, then expires' };
      }
    case 'PROCESSING':
      if (!machine.pending) return { kind: 'call' };
      if (machine.pending.result) return { kind: 'settle', result: machine.pending.result };
      return due(machine.pending.nextPollAt)
        ? { kind: 'ask', providerRef: machine.pending.providerRef }
        : { kind: 'wait', until: machine.pending.nextPollAt, why: 'awaits the provider' };
  }
}

/** The next moment something is due to happen to the instruction, for operators (NextActionAt). */
export function nextActionAt(machine: InstructionMachine, arrearsExpiryMs?: number): string | undefined {
  if (isAtRest(machine.status)) return undefined;
  const step = decide(machine, Number.NEGATIVE_INFINITY, arrearsExpiryMs);
  return step.kind === 'wait' ? step.until : undefined;
}

export function transition(machine: InstructionMachine, status: InstructionStatus, at: string): void {
  if (!canTransition(machine.status, status)) {
    // A bug, not a business outcome: failing the workflow task stops this order, visibly, until fixed code is deployed.
    throw new Error(`illegal transition of ${machine.plan.instructionRef}: ${machine.status} -> ${status}`);
  }
  machine.status = status;
  const stamp = {
    OPEN: 'openedAt',
    PROCESSING: 'processingAt',
    LATE: 'lateAt',
    SETTLED: 'settledAt',
    FAILED: 'failedAt',
    CANCELLED: 'cancelledAt',
    RETURNED: 'returnedAt',
    PENDING: undefined,
  }[status];
  if (stamp) machine[stamp as 'openedAt'] = at;
}

/** A provider call is about to be made. */
export function startCall(machine: InstructionMachine, at: string): void {
  if (machine.status !== 'PROCESSING') transition(machine, 'PROCESSING', at);
  machine.attempts += 1;
  machine.keyUsed = true;
  machine.payNow = false;
  machine.retryAt = undefined;
}

/** What became of a provider call, from the workflow's side: an answer, or none at all, or a refusal no retry cures. */
export type CallResult =
  | PaymentOutcome
  | { status: 'UNANSWERED' }
  | { status: 'REJECTED'; code: string }
  /**
   * Refused under a key an earlier unanswered call may have paid with, or answered with other money
   * than asked: what moved is still unknown. `providerRef`: the reference the provider stated, if any.
   */
  | { status: 'UNKNOWN'; code: string; providerRef?: string };

export {
  MANDATE_RECHECK_DELAYS_MS,
  STATUS_POLL_DELAYS_MS,
  stillPending,
  UNANSWERED_RETRY_MS,
} from './provider-waits.js';

/** Our refusal of a debit whose stored instrument's mandate is not (yet) active: nothing was sent. */
export const MANDATE_NOT_ACTIVE = 'provider_rejected:mandate_not_active';

/** Our refusal of the call for want of an active mandate (MANDATE_NOT_ACTIVE). */
export function isMandateRefusal(result: CallResult): boolean {
  return result.status === 'REJECTED' && result.code === MANDATE_NOT_ACTIVE;
}

/**
 * The result of a check of the debit's mandate, made because an earlier call was refused for want of
 * it (MANDATE_RECHECK_DELAYS_MS), finding it still not active: nothing was sent, again.
 */
export function isMandateStillInactive(machine: InstructionMachine, result: CallResult): boolean {
  return isMandateRefusal(result) && (machine.mandateChecks ?? 0) > 0;
}

/** What may still be refunded of the instruction: refunds are of its last payment, whose amount is the plan's. */
export function refundableOf(machine: InstructionMachine): bigint {
  return refundableMinor({ ...machine, amountMinor: machine.plan.amountMinor }, machine.refunds);
}

/**
 * Moves the instruction on from a call's result (ARCHITECTURE.md, "Instruction lifecycle").
 * `customerMayRetry`: a decline of the customer's own payment leaves the instruction LATE, waiting
 * for them to pay another way (or for an amendment), instead of failing it or dunning their card.
 * `recheckMandate`: a debit refused for want of an active mandate is tried again on
 * MANDATE_RECHECK_DELAYS_MS, not only when the mandate's confirmation is signalled.
 * `keepsArrearsStart`: a check finding the mandate still not active leaves `lateAt` (when its arrears
 * began) as the first refusal set it. `replacedSecretHolds`: as `applyReturn`'s.
 */
export function applyResult(
  machine: InstructionMachine,
  result: CallResult,
  nowMs: number,
  policy: InstructionPolicy,
  options: {
    customerMayRetry?: boolean;
    recheckMandate?: boolean;
    keepsArrearsStart?: boolean;
    replacedSecretHolds?: boolean;
  } = {},
): void {
  const { dunningDelaysMs } = policy;
  const now = new Date(nowMs).toISOString();
  const arrearsSince =
    options.keepsArrearsStart && isMandateStillInactive(machine, result) ? machine.lateAt : undefined;
  machine.unanswered = false;
  const mandateChecks = machine.mandateChecks ?? 0;
  machine.mandateChecks = undefined;
  const customers = machine.customerPaying === true;
  // A PENDING answer is not the end of the customer's payment: its callback is.
  if (result.status !== 'PENDING') machine.customerPaying = undefined;
  switch (result.status) {
    case 'SETTLED':
      settle(machine, result.providerRef, now, result.voucherCode);
      return;
    case 'RETURNED':
      // Settled, and taken back before we heard: both happened, in that order.
      settle(machine, result.providerRef, now);
      applyReturn(machine, result, nowMs, policy, { replacedSecretHolds: options.replacedSecretHolds });
      return;
    case 'PENDING':
      machine.providerRef = result.providerRef;
      // Answered under its key: the outcome is no longer unknown (nor resolvable), only pending.
      if (speaksOfUnknownOutcome(machine.failureCode)) machine.failureCode = undefined;
      machine.pending = {
        providerRef: result.providerRef,
        polls: 0,
        nextPollAt: new Date(nowMs + STATUS_POLL_DELAYS_MS[0]).toISOString(),
      };
      return;
    case 'DECLINED': {
      machine.pending = undefined;
      machine.providerRef = result.providerRef;
      machine.failureCode = result.code;
      // A definite answer: the next attempt is a new payment, with a new key.
      machine.keyAttempt += 1;
      machine.keyUsed = false;
      if (customers && options.customerMayRetry) {
        machine.retryAt = undefined;
        transition(machine, 'LATE', now);
        return;
      }
      if (!result.retryable || machine.declines >= dunningDelaysMs.length) {
        transition(machine, 'FAILED', now);
        return;
      }
      machine.retryAt = new Date(nowMs + dunningDelaysMs[machine.declines]).toISOString();
      machine.declines += 1;
      transition(machine, 'LATE', now);
      return;
    }
    case 'UNANSWERED':
    case 'UNKNOWN':
      // Money may have moved under the key: it is kept, and asked about again later.
      machine.unanswered = true;
      // Not believed, but the provider's name for the payment: its callback is known by it.
      if (result.status === 'UNKNOWN' && result.providerRef) machine.providerRef = result.providerRef;
      machine.failureCode = result.status === 'UNANSWERED' ? 'provider_unavailable' : 'outcome_unknown';
      machine.retryAt = new Date(nowMs + UNANSWERED_RETRY_MS).toISOString();
      transition(machine, 'LATE', now);
      return;
    case 'REJECTED':
      // Nothing moved, and nothing will until the tenant changes something: no retry time.
      machine.failureCode = result.code;
      machine.keyAttempt += 1;
      machine.keyUsed = false;
      machine.pending = undefined;
      if (
        options.recheckMandate &&
        result.code === MANDATE_NOT_ACTIVE &&
        mandateChecks < MANDATE_RECHECK_DELAYS_MS.length
      ) {
        machine.retryAt = new Date(nowMs + MANDATE_RECHECK_DELAYS_MS[mandateChecks]).toISOString();
        machine.mandateChecks = mandateChecks + 1;
      }
      transition(machine, 'LATE', now);
      if (arrearsSince !== undefined) machine.lateAt = arrearsSince;
  }
}

function settle(machine: InstructionMachine, providerRef: string, at: string, voucherCode?: string): void {
  transition(machine, 'SETTLED', at);
  Object.assign(machine, { providerRef, voucherCode, failureCode: undefined, pending: undefined });
  machine.settledAmountMinor = (BigInt(machine.settledAmountMinor) + BigInt(machine.plan.amountMinor)).toString();
}

/** How a taken-back payment's failure code begins, before the provider's code: written by a return, read by a retry's check. */
const REVERSAL_FAILURE_PREFIX: Record<Reversal['kind'], string> = { RETURN: 'returned:', CHARGEBACK: 'charged_back:' };
/**
 * A reversal told only under a callback secret replaced since (held from being collected again): the
 * tenant sees why, and checks with its provider before retrying (a leaked key could have forged it).
 */
const UNDER_REPLACED_SECRET_PREFIX: Record<Reversal['kind'], string> = {
  RETURN: 'returned_replaced_secret:',
  CHARGEBACK: 'charged_back_replaced_secret:',
};

/** Whether a reversal is of this instruction's settled payment, from the app that took it. */
export function reverses(machine: InstructionMachine, reversal: Reversal & { appId?: string }): boolean {
  return machine.status === 'SETTLED' && machine.providerRef === reversal.providerRef && fromItsApp(machine, reversal);
}

/**
 * The settled payment was taken back (ARCHITECTURE.md, "After settlement"): what was not refunded of
 * it is returned; then, by the returns policy, it is collected again on the dunning schedule with a
 * new key (a retryable return code, dunning left), or it fails.
 *
 * `refundsHold` (since RETURN_AFTER_REFUND): a payment refunded in part or whole before it was taken
 * back is not collected again. Only what was not refunded was taken back, so the instruction's amount
 * is no longer what is owed: collecting it would take again what was given back. It fails. A refund
 * still under way does not hold it: the return took the whole payment, and whether the refund is made
 * or not, the instruction's amount collected again leaves the customer paying what is owed.
 *
 * `replacedSecretHolds` (since RETURN_UNDER_REPLACED_SECRET): a return told only under a callback
 * secret the tenant replaced since is not collected again. The key may have been replaced because it
 * leaked, and a forged return collected again would charge the customer twice: the tenant, having
 * checked with its provider, retries it.
 */
export function applyReturn(
  machine: InstructionMachine,
  reversal: Reversal,
  nowMs: number,
  policy: InstructionPolicy,
  options: { refundsHold?: boolean; replacedSecretHolds?: boolean } = {},
): void {
  const now = new Date(nowMs).toISOString();
  const paid = BigInt(machine.plan.amountMinor);
  const refundedOfIt = machine.refunds
    .filter((r) => r.paymentRef === reversal.providerRef && r.status === 'SUCCEEDED')
    .reduce((sum, r) => sum + BigInt(r.amountMinor), 0n);
  // What was taken back: as the provider states it (never more than was paid), else what was not refunded.
  const stated = reversal.amountMinor === undefined ? undefined : BigInt(reversal.amountMinor);
  const taken = stated !== undefined ? (stated < paid ? stated : paid) : paid - refundedOfIt;
  machine.returnedAmountMinor = (BigInt(machine.returnedAmountMinor) + (taken > 0n ? taken : 0n)).toString();
  // A part given back first: what is owed is no longer the instruction's amount. Stated, it counts a
  // refund the provider made that is PENDING here. It holds back collecting again when stated, or since
  // RETURN_AFTER_REFUND (histories from before either replay as they ran); a retry's validator reads it
  // whatever the history, as it is not a decision of the workflow's.
  const givenBackFirst = stated !== undefined ? stated < paid : refundedOfIt > 0n;
  const partGivenBack = givenBackFirst && (stated !== undefined || options.refundsHold === true);
  machine.refundedBeforeReturn = givenBackFirst;
  machine.returnCode = reversal.code;
  machine.returnedRef = reversal.providerRef;
  machine.returnedPaymentMinor = paid.toString();
  transition(machine, 'RETURNED', now);
  const heldAsUnderReplacedSecret = reversal.underReplacedSecret === true && options.replacedSecretHolds === true;
  const prefix = (heldAsUnderReplacedSecret ? UNDER_REPLACED_SECRET_PREFIX : REVERSAL_FAILURE_PREFIX)[reversal.kind];
  machine.failureCode = `${prefix}${reversal.code}`.slice(0, 64);
  // The payment is over: the next one is another, under a new key.
  machine.keyAttempt += 1;
  machine.keyUsed = false;
  const recollect =
    !partGivenBack &&
    policy.returnsPolicy === 'RECOLLECT' &&
    reversal.kind === 'RETURN' &&
    !heldAsUnderReplacedSecret &&
    RETRYABLE_RETURN_CODES.includes(reversal.code) &&
    machine.declines < policy.dunningDelaysMs.length;
  if (!recollect) {
    transition(machine, 'FAILED', now);
    return;
  }
  machine.retryAt = new Date(nowMs + policy.dunningDelaysMs[machine.declines]).toISOString();
  machine.declines += 1;
  transition(machine, 'LATE', now);
}

/** Whether a provider's result comes from the app paying the instruction (a result from before results named their app does too). */
export function fromItsApp(machine: InstructionMachine, result: { appId?: string }): boolean {
  return result.appId === undefined || result.appId === machine.plan.appId;
}

/** Whether a provider's asynchronous result is for this instruction's payment in flight, from the app paying it. */
export function awaits(machine: InstructionMachine, result: SignalledResult): boolean {
  return (
    machine.status === 'PROCESSING' &&
    machine.pending?.providerRef === result.providerRef &&
    fromItsApp(machine, result)
  );
}

/**
 * Whether a provider's asynchronous result is for this instruction's payment of unknown outcome, by
 * the reference the provider stated, from the app paying it (and no call under way): a prompt to ask
 * the provider again under the key now. Not applied itself: the provider said two things, and its
 * answer under the key says which stands.
 */
export function speaksOfUnknown(machine: InstructionMachine, result: SignalledResult): boolean {
  return (
    machine.status === 'LATE' &&
    machine.unanswered &&
    machine.providerRef === result.providerRef &&
    fromItsApp(machine, result)
  );
}

// Changes from outside. Each `…Refusal` says why the change may not be made now (the API's 409), or
// nothing when it may; each `apply…` makes it.

export function changeRefusal(machine: InstructionMachine, change: 'cancel' | 'amend' | 'pay'): string | undefined {
  // payNow: a payment was taken in this same moment and is about to start; it counts as under way.
  if (machine.status === 'PROCESSING' || machine.payNow) {
    return `instruction ${machine.plan.instructionRef} is being paid; it can no longer be ${pastTense(change)}`;
  }
  if (isAtRest(machine.status)) {
    const instead =
      machine.status === 'FAILED' && failedAfterPartGivenBack(machine) ? OWED_ELSEWHERE : INSTEAD[machine.status];
    return `instruction ${machine.plan.instructionRef} is ${machine.status}; it can no longer be ${pastTense(change)}${instead ?? ''}`;
  }
  if (machine.unanswered) {
    return `the last payment call of ${machine.plan.instructionRef} went unanswered and may have moved money; it can be ${pastTense(change)} once the provider answers`;
  }
  if (change === 'pay' && machine.status === 'PENDING')
    return `instruction ${machine.plan.instructionRef} is not open for payment until ${machine.plan.openAt}`;
  return undefined;
}

/** What a tenant may do instead with an instruction that failed on a return of a payment not all taken back. */
const OWED_ELSEWHERE = ' (collect what is still owed with a new order)';

/** What a tenant may do instead with an instruction at rest. */
const INSTEAD: Partial<Record<InstructionStatus, string>> = {
  SETTLED: ' (refund it with POST …/refunds)',
  FAILED: ' (retry it with POST …/retry)',
};

/** Expired arrears: a LATE instruction waited its whole time with nothing planned. */
export function applyExpiry(machine: InstructionMachine, at: string): void {
  transition(machine, 'FAILED', at);
  machine.failureCode = 'expired';
}

/** A FAILED instruction tried again: what may change, and when it falls due (absent: now). */
export interface InstructionRetry {
  financialInstrumentId?: string;
  instrumentId?: string;
  dueAt?: string;
  /** The business day of `dueAt` (absent: dueAt). */
  chargeAt?: string;
}

export function retryRefusal(machine: InstructionMachine): string | undefined {
  const ref = machine.plan.instructionRef;
  if (machine.unanswered)
    return `the last payment call of ${ref} went unanswered and may have moved money; it can be retried once the provider answers`;
  if (machine.status === 'FAILED' && failedAfterPartGivenBack(machine))
    return `the last payment of ${ref} was not all taken back (some or all of it was refunded first, or the provider took back a part), so its amount is no longer what is owed; collect what is still owed with a new order`;
  if (machine.refunds.some((r) => r.status === 'PENDING'))
    return `a refund of ${ref} is under way; it can be retried once that has ended`;
  if (machine.status !== 'FAILED')
    return `instruction ${ref} is ${machine.status}; only a FAILED instruction can be retried`;
  return undefined;
}

/**
 * Whether a FAILED instruction failed on a return of a payment refunded in part or whole first (a
 * later decline of a payment collected again is another matter). A machine carried from a run before
 * `refundedBeforeReturn` was kept says it by its refunds: one made of the returned payment (which errs
 * toward refusing when that refund was still under way at the return, leaving the tenant a new order
 * instead of a charge that may be too much).
 */
function failedAfterPartGivenBack(machine: InstructionMachine): boolean {
  const failureCode = machine.failureCode ?? '';
  const reversed = [...Object.values(REVERSAL_FAILURE_PREFIX), ...Object.values(UNDER_REPLACED_SECRET_PREFIX)];
  if (!reversed.some((prefix) => failureCode.startsWith(prefix))) return false;
  return (
    machine.refundedBeforeReturn ??
    machine.refunds.some((r) => r.paymentRef === machine.returnedRef && r.status === 'SUCCEEDED')
  );
}

/** Open again, due at the given date (or now), with a new key, the dunning schedule from its start. */
export function applyRetry(machine: InstructionMachine, retry: InstructionRetry, nowMs: number): void {
  const now = new Date(nowMs).toISOString();
  machine.mandateChecks = undefined;
  const later = retry.dueAt !== undefined && Date.parse(retry.dueAt) > nowMs;
  const dueAt = later ? retry.dueAt! : now;
  const { chargeAt: _previousChargeAt, ...plan } = machine.plan;
  // Its charge date as the API planned it (business days, the customer's notice), unless already past.
  const chargeLater = retry.chargeAt !== undefined && Date.parse(retry.chargeAt) > nowMs;
  machine.plan = {
    ...plan,
    dueAt,
    ...(chargeLater ? { chargeAt: retry.chargeAt } : {}),
    openAt: Date.parse(machine.plan.openAt) > Date.parse(dueAt) ? dueAt : machine.plan.openAt,
    ...(retry.financialInstrumentId ? { financialInstrumentId: retry.financialInstrumentId } : {}),
    ...(retry.instrumentId ? { instrumentId: retry.instrumentId } : {}),
  };
  keepOneInstrument(machine.plan, retry);
  // A key that reached the provider belongs to the payment that failed: the retry is another.
  if (machine.keyUsed) {
    machine.keyAttempt += 1;
    machine.keyUsed = false;
  }
  machine.declines = 0;
  machine.failureCode = undefined;
  machine.retryAt = undefined;
  machine.payNow = false;
  machine.customerPaying = undefined;
  // Whatever its last return was, the next payment is another (a history from before the refusal may retry one).
  machine.refundedBeforeReturn = undefined;
  transition(machine, 'OPEN', now);
  machine.revision += 1;
}

function pastTense(change: 'cancel' | 'amend' | 'pay'): string {
  return { cancel: 'cancelled', amend: 'amended', pay: 'paid' }[change];
}

export function applyCancel(machine: InstructionMachine, at: string): void {
  transition(machine, 'CANCELLED', at);
  machine.retryAt = undefined;
  machine.revision += 1;
}

export function amendRefusal(machine: InstructionMachine, amendment: InstructionAmendment): string | undefined {
  const refusal = changeRefusal(machine, 'amend');
  if (refusal) return refusal;
  if (amendment.openAt !== undefined && amendment.openAt !== machine.plan.openAt && machine.status !== 'PENDING') {
    return `instruction ${machine.plan.instructionRef} is open already; its open date can no longer change`;
  }
  const openAt = amendment.openAt ?? machine.plan.openAt;
  const dueAt = amendment.dueAt ?? machine.plan.dueAt;
  if (dueBeforeOpen(openAt, dueAt)) return DUE_BEFORE_OPEN.message;
  return undefined;
}

export function applyAmendment(machine: InstructionMachine, amendment: InstructionAmendment, nowMs: number): void {
  const changesPayment = (
    ['amountMinor', 'financialInstrumentId', 'instrumentId', 'appId', 'paymentMethod'] as const
  ).some((field) => amendment[field] !== undefined && amendment[field] !== machine.plan[field]);
  machine.plan = { ...machine.plan, ...definedOnly(amendment) };
  keepOneInstrument(machine.plan, amendment);
  // A new due date without its business day (a change made before business days) is charged as asked.
  if (amendment.dueAt !== undefined && amendment.chargeAt === undefined) delete machine.plan.chargeAt;
  // Another payment than the one the current key was used for: a new key, so the provider never mistakes it for a retry.
  if (changesPayment && machine.keyUsed) {
    machine.keyAttempt += 1;
    machine.keyUsed = false;
  }
  // Another instrument (or mandate) may be refused for want of its mandate: its checks start afresh.
  if (changesPayment) machine.mandateChecks = undefined;
  if (machine.status === 'LATE') {
    // Tried again at the new due date, or at once when that has passed (or it waited for a change).
    const dueMs = Date.parse(chargeDateOf(machine.plan));
    machine.retryAt = new Date(Math.max(nowMs, dueMs)).toISOString();
  }
  machine.revision += 1;
}

/** What a tenant admin found out about a payment of unknown outcome, from the provider itself. */
export interface Resolution {
  outcome: 'SETTLED' | 'NOT_PAID';
  /** The provider's reference of the payment that settled. */
  providerRef?: string;
}

/**
 * Why a tenant admin cannot resolve the payment, if they cannot: only one of unknown outcome, or one
 * PENDING whose provider refused for good to say how it ended (its callback may never come), between
 * calls, is theirs to end.
 */
export function resolutionRefusal(machine: InstructionMachine, nowMs: number): string | undefined {
  const ref = machine.plan.instructionRef;
  const { pending } = machine;
  if (!machine.unanswered && !pending?.refused)
    return `instruction ${ref} has no payment of unknown outcome to resolve`;
  const calling = machine.status === 'PROCESSING' && !pending;
  if (calling || callDue(machine, nowMs) || pending?.asking)
    return `the provider is being asked about ${ref} right now; resolve it once that call has ended`;
  // Taken in the same workflow task as the provider's word, before the loop applies it: not dropped.
  if (pending?.result || pending?.reversal) return `the provider has just said how ${ref} ended`;
  return undefined;
}

/**
 * Ends an unknown outcome with what the tenant found out: settled, or nothing paid, after which the
 * key is free for a new payment; the instruction then waits for an amendment, a payment or a cancel.
 * `countsAmount` (since RESOLUTION_SETTLES_AMOUNT): a settlement resolved counts its amount as
 * collected, as one the provider answered does; older histories replay with it not counted.
 */
export function applyResolution(
  machine: InstructionMachine,
  resolution: Resolution,
  at: string,
  countsAmount = true,
): void {
  machine.unanswered = false;
  machine.retryAt = undefined;
  // A PENDING payment whose provider refused to say: no longer waited for, nor the customer's own.
  const pending = machine.pending !== undefined;
  machine.pending = undefined;
  machine.customerPaying = undefined;
  if (resolution.outcome === 'SETTLED' && countsAmount) {
    settle(machine, resolution.providerRef ?? machine.providerRef!, at);
  } else if (resolution.outcome === 'SETTLED') {
    transition(machine, 'SETTLED', at);
    machine.providerRef = resolution.providerRef ?? machine.providerRef;
    machine.failureCode = undefined;
  } else {
    machine.keyAttempt += 1;
    machine.keyUsed = false;
    machine.failureCode = 'resolved_not_paid';
    if (pending) transition(machine, 'LATE', at);
  }
  machine.revision += 1;
}

export function payRefusal(
  machine: InstructionMachine,
  choice: { appId: string; paymentMethod: string },
): string | undefined {
  const refusal = changeRefusal(machine, 'pay');
  if (refusal) return refusal;
  if (!offeredOption(machine.plan.options, choice)) {
    return `${choice.paymentMethod} through ${choice.appId} is not an option of instruction ${machine.plan.instructionRef}`;
  }
  return undefined;
}

export function applyPayment(
  machine: InstructionMachine,
  choice: {
    appId: string;
    paymentMethod: InstructionPlan['paymentMethod'];
    financialInstrumentId?: string;
    instrumentId?: string;
  },
): void {
  applyAmendment(machine, choice, Number.NEGATIVE_INFINITY);
  machine.payNow = true;
  machine.customerPaying = true;
}

/** The fields of a change that it sets. */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A stored instrument's mandate moved. Ended (CANCELLED, EXPIRED): an instruction that would debit
 * under it waits LATE (`mandate_cancelled`, `mandate_expired`) for an amendment or a payment, the
 * instrument dropped; one whose payment is under way, or went unanswered, is left to its answer.
 * ACTIVE: one refused for want of it is tried again now. Returns whether the instruction changed.
 */
export function applyMandateChange(
  machine: InstructionMachine,
  change: { instrumentId: string; status: string },
  at: string,
): boolean {
  if (machine.plan.instrumentId !== change.instrumentId || machine.unanswered) return false;
  if (change.status === 'ACTIVE') {
    if (machine.status !== 'LATE' || machine.failureCode !== MANDATE_NOT_ACTIVE) return false;
    machine.retryAt = at;
    machine.mandateChecks = undefined;
    machine.revision += 1;
    return true;
  }
  if (change.status !== 'CANCELLED' && change.status !== 'EXPIRED') return false;
  if (machine.status !== 'PENDING' && machine.status !== 'OPEN' && machine.status !== 'LATE') return false;
  delete machine.plan.instrumentId;
  machine.retryAt = undefined;
  machine.payNow = false;
  machine.failureCode = change.status === 'CANCELLED' ? 'mandate_cancelled' : 'mandate_expired';
  if (machine.status === 'OPEN') transition(machine, 'LATE', at);
  machine.revision += 1;
  return true;
}
