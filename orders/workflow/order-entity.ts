// The order as its workflow holds it (ARCHITECTURE.md, "Temporal design"): one serialisable state,
// and what every message does to it. Validators refuse, handlers change; neither waits. The
// workflow function wires these to Temporal; the loops, the projector and the operator view read
// and mark what changed here.
import { ApplicationFailure, log, patched } from '@temporalio/workflow';
import { DEFAULT_ARREARS_EXPIRY_DAYS, DEFAULT_DUNNING_DELAYS_MS } from '../../domain/dunning.js';
import { dueBeforeOpen, DUE_BEFORE_OPEN, type Instruction } from '../../domain/instruction.js';
import { countByStatus, isAtRest, orderStatusOf, type OrderStatus } from '../../domain/instruction-status.js';
import { RESOLVED_NOT_REFUNDED } from '../../domain/refund.js';
import { EVENT_OF_STATUS, type EventType } from '../../domain/webhook.js';
import type { RecordedEvent } from '../contract/activities.js';
import { eventInstructionOf, instructionOf, instructionViewOf } from '../contract/instruction-codec.js';
import { MAX_INSTRUCTIONS_PER_ORDER, MAX_REFUNDS_PER_ORDER } from '../contract/limits.js';
import type {
  AddInstruction,
  AmendInstruction,
  CancelInstruction,
  CreateRefund,
  ResolveRefund,
  MandateChanged,
  OrderView,
  PaymentOrderInput,
  PayInstruction,
  ResolveInstruction,
  RetryInstruction,
  SignalledRefundResult,
  SignalledResult,
} from '../contract/messages.js';
import { CHANGE_REFUSALS, orderEndedMessage } from '../contract/refusals.js';
import {
  amendRefusal,
  applyAmendment,
  applyCancel,
  applyMandateChange,
  applyNotice,
  applyPayment,
  applyResolution,
  applyRetry,
  applyReturn,
  awaits,
  changeRefusal,
  fromItsApp,
  isMandateRefusal,
  isMandateStillInactive,
  newMachine,
  nextActionAt,
  payRefusal,
  resolutionRefusal,
  retryRefusal,
  refundableOf,
  reverses,
  speaksOfUnknown,
  upgradeMachine,
  type CallResult,
  type InstructionMachine,
  type InstructionPolicy,
} from './instruction-machine.js';
import {
  EARLY_RESULT_WAITS_FOR_ITS_CALL,
  REFUND_EARLY_RESULT_WAITS_FOR_ITS_CALL,
  MANDATE_CHECK_KEEPS_ARREARS_START,
  MANDATE_CHECKS_AFRESH,
  MANDATE_RECHECKED,
  PATCHES_BEFORE_START,
  REFUND_FROM_BEFORE_KEEPS_ITS_APP,
  REFUND_KEEPS_ITS_APP,
  REOPENS_WHEN_MOVED,
  RESOLUTION_SETTLES_AMOUNT,
  RETURN_AFTER_REFUND,
  RETURN_OF_UNKNOWN_KEPT,
  RETURN_UNDER_REPLACED_SECRET,
  UNKNOWN_ASKED_ON_CALLBACK,
  type OrderPatches,
} from './order-patches.js';
import {
  applyRefundResult,
  refundAppOf,
  refundOf,
  refundResolutionRefusal,
  speaksOfUnknownRefund,
  type RefundCallResult,
  type RefundMachine,
} from './refund-machine.js';
import { retryNow } from './provider-waits.js';

const DAY_MS = 24 * 3600_000;

/** The whole order, serialisable: what continue-as-new carries to the next run. */
export interface OrderState {
  tenantId: string;
  orderId: string;
  orderRef: string;
  dunningDelaysMs: number[];
  /** What a returned payment does (absent in runs of older code: RECOLLECT). */
  returnsPolicy?: 'RECOLLECT' | 'FAIL';
  /** How long arrears wait before they expire, and a failed instruction may be retried. */
  arrearsExpiryMs?: number;
  /** Per app: how long after a collection settles it may be refunded or taken back, so the order stays open. */
  reversalWindowMs?: Record<string, number>;
  status: OrderStatus;
  cancelRequested: boolean;
  instructions: InstructionMachine[];
  /** Instructions (by ref) changed since the read model last took them, and whether the order row did. */
  dirty: string[];
  /** Refunds (by id) changed since the read model last took them. */
  dirtyRefunds?: string[];
  orderDirty: boolean;
  /** Metadata of added or amended instructions, kept only until projected (it is not needed to pay). */
  pendingMetadata: Record<string, Record<string, string>>;
  /** Events not yet recorded: they go with the next projection. */
  events: RecordedEvent[];
  /** The order's own events told so far (created, completed, cancelled). */
  orderEvents: string[];
  /** The last projection version handed out (a bigint as a string), so versions rise across runs. */
  lastVersion: string;
  /** What operators were last shown, so search attributes and memo are upserted only when they change. */
  shown: { status?: string; nextActionAt?: string | null; totals?: string; counted?: boolean };
  /** The ids of the updates taken lately, newest last, carried across runs (TakenUpdates; absent before any). */
  takenUpdates?: string[];
  /** Provider results that came for no known payment while a payment call was under way (EARLY_RESULT_WAITS_FOR_ITS_CALL). */
  earlyResults?: SignalledResult[];
  /** Refund results that came for no known refund, or one being called again, while a refund call was under way (REFUND_EARLY_RESULT_WAITS_FOR_ITS_CALL). */
  earlyRefundResults?: SignalledRefundResult[];
  /** Returns that came for a payment of unknown outcome, by instruction, taken once its outcome is known (RETURN_OF_UNKNOWN_KEPT). */
  returnsOfUnknown?: { instructionRef: string; result: Extract<SignalledResult, { status: 'RETURNED' }> }[];
}

/** How many early results are kept: one per call under way is what a race leaves; the oldest go first. */
const EARLY_RESULTS_KEPT = 20;

/** The results kept early, with one more: the oldest go first past EARLY_RESULTS_KEPT. */
function keptWith<T>(kept: T[] | undefined, result: T): T[] {
  return [...(kept ?? []), result].slice(-EARLY_RESULTS_KEPT);
}

/** The results kept early under `providerRef`, and the others. */
function keptUnder<T extends { providerRef: string }>(kept: T[] | undefined, providerRef: string | undefined) {
  const all = kept ?? [];
  return [all.filter((r) => r.providerRef === providerRef), all.filter((r) => r.providerRef !== providerRef)] as const;
}

/**
 * Whether a reversal told only under a callback secret replaced since is held from being collected
 * again (`applyReturn`): asked of the patch only for such a reversal, so other histories take no marker.
 */
function underReplacedSecretHolds(reversal: { underReplacedSecret?: true }): boolean {
  return reversal.underReplacedSecret === true && patched(RETURN_UNDER_REPLACED_SECRET);
}

/** The event each refund status tells. */
const REFUND_EVENTS: Record<RefundMachine['status'], EventType> = {
  PENDING: 'refund.created',
  SUCCEEDED: 'refund.succeeded',
  FAILED: 'refund.failed',
};

/** The event an order's end tells. */
const END_EVENTS: Record<Exclude<OrderStatus, 'ACTIVE'>, EventType> = {
  COMPLETED: 'order.completed',
  COMPLETED_WITH_FAILURES: 'order.completed_with_failures',
  CANCELLED: 'order.cancelled',
};

export class OrderEntity {
  private readonly machines: Map<string, InstructionMachine>;
  /** The run is ending for good (its windows have passed): nothing more is taken. */
  private closed = false;

  constructor(
    readonly state: OrderState,
    /** Called on every change, so the operators' view is brought up to date. */
    private readonly onChange: () => void,
    readonly patches: OrderPatches,
  ) {
    // A state carried from a run of older code gets what was added since.
    state.instructions.forEach(upgradeMachine);
    state.dirtyRefunds ??= [];
    this.machines = new Map(state.instructions.map((m) => [m.plan.instructionRef, m]));
  }

  static initialState(input: PaymentOrderInput): OrderState {
    return {
      tenantId: input.tenantId,
      orderId: input.orderId,
      orderRef: input.orderRef,
      dunningDelaysMs: input.dunningDelaysMs ?? [...DEFAULT_DUNNING_DELAYS_MS],
      returnsPolicy: input.returnsPolicy ?? 'RECOLLECT',
      arrearsExpiryMs: (input.arrearsExpiryDays ?? DEFAULT_ARREARS_EXPIRY_DAYS) * DAY_MS,
      reversalWindowMs: Object.fromEntries(
        Object.entries(input.reversalWindowDays ?? {}).map(([appId, days]) => [appId, days * DAY_MS]),
      ),
      status: 'ACTIVE',
      cancelRequested: false,
      instructions: input.instructions.map(newMachine),
      dirty: [],
      orderDirty: true,
      pendingMetadata: {},
      events: [],
      orderEvents: [],
      lastVersion: '0',
      shown: { status: 'ACTIVE' },
    };
  }

  // ---- messages: each validator refuses with a reason, each handler makes the change --------

  view(): OrderView {
    return {
      orderRef: this.state.orderRef,
      status: this.state.status,
      instructions: this.state.instructions.map((m) => instructionViewOf(this.instructionOf(m))),
      refunds: this.state.instructions.flatMap((m) =>
        m.refunds.map((r) => ({
          instructionRef: m.plan.instructionRef,
          refundId: r.refundId,
          appId: refundAppOf(r, m.plan.appId),
          amountMinor: r.amountMinor,
          currency: r.currency,
          status: r.status,
          ...(r.providerRef ? { providerRef: r.providerRef } : {}),
        })),
      ),
    };
  }

  /**
   * Only a payment in flight takes a result, from its own app; a late, repeated or foreign callback
   * changes nothing. A reversal is taken only for a settled payment, from the app that took it.
   * Returns the instruction that must run again (a payment returned), if any.
   */
  takeResult(result: SignalledResult): InstructionMachine | undefined {
    if (result.status === 'RETURNED' && this.closed) {
      log.warn('a reversal came after the order closed; it is kept with its callback, not applied', {
        tenantId: this.state.tenantId,
        orderRef: this.state.orderRef,
        providerRef: result.providerRef,
      });
      return undefined;
    }
    if (result.status === 'RETURNED') {
      const settled = this.state.instructions.find((m) => reverses(m, result));
      if (settled) {
        this.takeReversal(settled, result);
        return settled;
      }
      // Its settlement came too and is not applied yet: the reversal waits for it, never dropped.
      const settling = this.state.instructions.find(
        (m) =>
          m.pending?.providerRef === result.providerRef &&
          m.pending.result?.status === 'SETTLED' &&
          !m.pending.reversal &&
          fromItsApp(m, result),
      );
      if (settling?.pending && this.patches.has(PATCHES_BEFORE_START.REVERSAL_BEFORE_SETTLED)) {
        const { appId: _, ...reversal } = result;
        settling.pending.reversal = reversal;
        settling.revision += 1;
        return undefined;
      }
    }
    const machine = this.state.instructions.find((m) => awaits(m, result) && !m.pending?.result);
    if (machine?.pending) {
      machine.pending.result = result;
      machine.revision += 1;
      return undefined;
    }
    const unknown = this.state.instructions.find((m) => speaksOfUnknown(m, result));
    if (unknown && patched(UNKNOWN_ASKED_ON_CALLBACK)) {
      log.info('a callback for a payment of unknown outcome: the provider is asked again now', {
        ...this.logFields(unknown),
        providerRef: result.providerRef,
        callback: result.status,
      });
      retryNow(unknown, Date.now());
      this.keepReturnOfUnknown(result);
      return undefined;
    }
    if (this.keepReturnOfUnknown(result)) return undefined;
    if (this.keepEarly(result)) return undefined;
    const named = this.state.instructions.find((m) => m.providerRef === result.providerRef && fromItsApp(m, result));
    if (named && result.status === 'SETTLED' && holdsNotTaken(named, result.providerRef)) {
      // Money the provider says it took, on a payment this order holds as not taken (declined, resolved
      // NOT_PAID): not applied, but an operator must hear of it, as reconciliation will show it.
      log.warn('a provider says a payment settled that the order holds as not settled; not applied', {
        ...this.logFields(named),
        providerRef: result.providerRef,
      });
    }
    return undefined;
  }

  /**
   * Keeps a result that names no payment yet while a payment call of its app is under way: the call's
   * answer may name it, and can be applied after it in the same workflow task (signals come first).
   */
  private keepEarly(result: SignalledResult): boolean {
    const calling = this.state.instructions.some(
      (m) => m.status === 'PROCESSING' && !m.pending && fromItsApp(m, result),
    );
    if (!calling || this.state.instructions.some((m) => m.providerRef === result.providerRef)) return false;
    if (!patched(EARLY_RESULT_WAITS_FOR_ITS_CALL)) return false;
    this.state.earlyResults = keptWith(this.state.earlyResults, result);
    return true;
  }

  /**
   * Keeps a return (or chargeback) of a payment of unknown outcome, LATE or being asked about again
   * under its key: the provider's answer may say only that it settled, and the return's callback is
   * marked delivered, never sent again. Taken once the outcome is known (takeReturnsOfUnknown).
   */
  private keepReturnOfUnknown(result: SignalledResult): boolean {
    if (result.status !== 'RETURNED') return false;
    const unknown = this.state.instructions.find(
      (m) =>
        m.unanswered &&
        !m.pending &&
        (m.status === 'LATE' || m.status === 'PROCESSING') &&
        m.providerRef === result.providerRef &&
        fromItsApp(m, result),
    );
    if (!unknown || !patched(RETURN_OF_UNKNOWN_KEPT)) return false;
    log.info('a return for a payment of unknown outcome: kept until its outcome is known', {
      ...this.logFields(unknown),
      providerRef: result.providerRef,
    });
    const kept = { instructionRef: unknown.plan.instructionRef, result };
    this.state.returnsOfUnknown = keptWith(this.state.returnsOfUnknown, kept);
    return true;
  }

  /**
   * The returns kept for an instruction whose payment's outcome is now known (its provider answered
   * under its key, or a tenant admin resolved it), taken: a settled payment's as its return, a pending
   * one's as its callback. One the answer told itself is done with. Against an outcome that says no
   * money moved under that reference, one is not applied, but an operator must hear of it. Still
   * unknown, they wait.
   */
  takeReturnsOfUnknown(machine: InstructionMachine): void {
    if (machine.unanswered) return;
    const { instructionRef } = machine.plan;
    const kept = this.state.returnsOfUnknown ?? [];
    const mine = kept.filter((k) => k.instructionRef === instructionRef);
    if (mine.length === 0) return;
    this.state.returnsOfUnknown = kept.filter((k) => k.instructionRef !== instructionRef);
    for (const { result } of mine) {
      const fields = { ...this.logFields(machine), providerRef: result.providerRef };
      if (machine.returnedRef === result.providerRef) continue;
      if (reverses(machine, result) || awaits(machine, result)) {
        log.info('a return that came while the payment’s outcome was unknown is taken now', fields);
        this.takeResult(result);
      } else {
        log.warn('a return came for a payment of unknown outcome that then ended otherwise; not applied', {
          ...fields,
          status: machine.status,
          paymentRef: machine.providerRef,
        });
      }
    }
  }

  /** The results kept for the payment a call's answer has just named, taken now. */
  takeEarlyResults(machine: InstructionMachine): void {
    const [mine, others] = keptUnder(this.state.earlyResults, machine.providerRef);
    if (mine.length === 0) return;
    this.state.earlyResults = others;
    for (const result of mine) {
      log.info('a provider result that came before its call was answered is taken now', {
        ...this.logFields(machine),
        providerRef: result.providerRef,
        result: result.status,
      });
      this.takeResult(result);
    }
  }

  /** A settled payment taken back: told as returned, then moved on by the returns policy. */
  takeReversal(machine: InstructionMachine, reversal: Extract<CallResult, { status: 'RETURNED' }>): void {
    const refunded = machine.refunds.some((r) => r.paymentRef === reversal.providerRef && r.status === 'SUCCEEDED');
    applyReturn(machine, reversal, Date.now(), this.policy(), {
      refundsHold: refunded && patched(RETURN_AFTER_REFUND),
      replacedSecretHolds: underReplacedSecretHolds(reversal),
    });
    this.tell(machine, 'instruction.returned');
    log.warn('payment taken back after it settled', {
      ...this.logFields(machine),
      kind: reversal.kind,
      code: reversal.code,
      // Not collected again, whatever its code: the tenant checks with its provider before retrying.
      ...(reversal.underReplacedSecret && { underReplacedSecret: true }),
    });
    this.changed(machine);
  }

  /** A status answer said the payment settled and was taken back: both are told. */
  toldReturn(machine: InstructionMachine): void {
    this.tell(machine, 'instruction.settled');
    this.tell(machine, 'instruction.returned');
  }

  /**
   * A refund's result, from its own app (the payment's, though the instruction is paid through
   * another since), for a refund still waiting for it; for a refund of unknown outcome, a prompt to
   * call the provider again now; anything else changes nothing.
   */
  takeRefundResult(result: SignalledRefundResult): void {
    for (const machine of this.state.instructions) {
      const refund = machine.refunds.find(
        (r) =>
          r.status === 'PENDING' &&
          r.pending?.providerRef === result.providerRef &&
          !r.pending.result &&
          refundAppOf(r, machine.plan.appId) === result.appId,
      );
      if (!refund?.pending) continue;
      const { appId: _, ...answer } = result;
      refund.pending.result = answer;
      refund.revision += 1;
      return;
    }
    for (const machine of this.state.instructions) {
      const unknown = machine.refunds.find((r) => speaksOfUnknownRefund(r, result, machine.plan.appId));
      if (!unknown || !patched(UNKNOWN_ASKED_ON_CALLBACK)) continue;
      log.info('a callback for a refund of unknown outcome: the provider is called again now', {
        ...this.logFields(machine),
        refundNumber: unknown.number,
        providerRef: result.providerRef,
        callback: result.status,
      });
      retryNow(unknown, Date.now());
      return;
    }
    if (this.keepEarlyRefund(result)) return;
    if (result.status !== 'SUCCEEDED') return;
    for (const machine of this.state.instructions) {
      const failed = machine.refunds.find(
        (r) =>
          r.status === 'FAILED' &&
          r.providerRef === result.providerRef &&
          refundAppOf(r, machine.plan.appId) === result.appId,
      );
      if (!failed) continue;
      // Money the provider says it gave back, on a refund held failed (a tenant admin said it was not
      // made, or the provider said so first): its amount is free to refund again, so it is not
      // applied, but an operator must hear of it (as for a payment), or the customer may be refunded twice.
      const fields = { ...this.logFields(machine), refundNumber: failed.number, providerRef: result.providerRef };
      if (failed.failureCode === RESOLVED_NOT_REFUNDED)
        log.warn('a provider says a refund succeeded that a tenant admin resolved as not made; not applied', fields);
      else log.warn('a provider says a refund succeeded that it said had failed; not applied', fields);
      return;
    }
  }

  /**
   * Keeps a refund's result that names no refund yet, or names one being called again, while a refund
   * call of its app is under way: the call's answer may name it, and can be applied after it in the
   * same workflow task (signals come first).
   */
  private keepEarlyRefund(result: SignalledRefundResult): boolean {
    const refunds = this.state.instructions.flatMap((m) => m.refunds.map((refund) => ({ m, refund })));
    const calling = ({ m, refund }: (typeof refunds)[number]) =>
      refund.calling === true && !refund.pending && refundAppOf(refund, m.plan.appId) === result.appId;
    if (!refunds.some(calling)) return false;
    // A refund that names it and is not being called has taken it, or dropped it, as it stands. One
    // being called again (its outcome unknown, its reference kept) has its answer to come.
    if (refunds.some((r) => r.refund.providerRef === result.providerRef && !calling(r))) return false;
    if (!patched(REFUND_EARLY_RESULT_WAITS_FOR_ITS_CALL)) return false;
    this.state.earlyRefundResults = keptWith(this.state.earlyRefundResults, result);
    return true;
  }

  /** The refund results kept for the refund a call's answer has just named, taken now. */
  takeEarlyRefundResults(machine: InstructionMachine, refund: RefundMachine): void {
    const [mine, others] = keptUnder(this.state.earlyRefundResults, refund.providerRef);
    if (mine.length === 0) return;
    this.state.earlyRefundResults = others;
    for (const result of mine) {
      log.info('a refund result that came before its call was answered is taken now', {
        ...this.logFields(machine),
        refundNumber: refund.number,
        providerRef: result.providerRef,
        result: result.status,
      });
      this.takeRefundResult(result);
    }
  }

  /** The customer is told, its notice period ahead, of the coming charge: amount, charge date (and mandate, in the event). */
  notify(machine: InstructionMachine): void {
    applyNotice(machine);
    this.tell(machine, 'instruction.upcoming');
    log.info('instruction told to its customer in advance', this.logFields(machine));
    this.changed(machine);
  }

  /**
   * Applies a change that starts the debit's mandate checks afresh (MANDATE_CHECKS_AFRESH); in runs
   * from before that patch the count it had is kept, as those runs did. `patched()` is asked only
   * when there was a count to keep.
   */
  private countingMandateChecks<T>(machine: InstructionMachine, apply: () => T): T {
    const checks = machine.mandateChecks;
    const applied = apply();
    if (checks !== undefined && machine.mandateChecks === undefined && !patched(MANDATE_CHECKS_AFRESH))
      machine.mandateChecks = checks;
    return applied;
  }

  /** A stored instrument's mandate moved: the instructions paying with it hear of it. */
  mandateChanged(change: MandateChanged): void {
    const at = nowIso();
    for (const machine of this.state.instructions) {
      if (!this.countingMandateChecks(machine, () => applyMandateChange(machine, change, at))) continue;
      log.info('mandate changed', { ...this.logFields(machine), mandate: change.status });
      this.changed(machine);
    }
  }

  /** The run ends for good: refunds, retries and returns are refused from now on. */
  close(): void {
    this.closed = true;
  }

  private refuseIfClosed(): void {
    if (this.closed) {
      refuse(
        CHANGE_REFUSALS.orderNotActive,
        `${orderEndedMessage(this.state.status)}; its refund and return windows have closed, so it takes no more changes`,
      );
    }
  }

  validateRefund({ instructionRef, amountMinor, refundId }: CreateRefund): void {
    this.refuseIfClosed();
    const machine = this.existing(instructionRef);
    const ref = machine.plan.instructionRef;
    if (refundById(machine, refundId)) refuse(CHANGE_REFUSALS.duplicate, `refund ${refundId} exists already`);
    if (machine.plan.direction !== 'DEBIT')
      refuse(CHANGE_REFUSALS.notRefundable, `instruction ${ref} is a payout; only collections are refunded`);
    if (machine.status !== 'SETTLED') {
      const why =
        machine.returnCode !== undefined && machine.status !== 'PROCESSING' ? ' (its payment was taken back)' : '';
      refuse(
        CHANGE_REFUSALS.notRefundable,
        `instruction ${ref} is ${machine.status}${why}; only a SETTLED collection can be refunded`,
      );
    }
    // Each refund is carried by every later run: their number is what keeps a continued run's state
    // under Temporal's payload limit.
    const refunds = this.state.instructions.reduce((n, m) => n + m.refunds.length, 0);
    if (refunds >= MAX_REFUNDS_PER_ORDER)
      refuse(
        CHANGE_REFUSALS.tooManyRefunds,
        `order ${this.state.orderRef} has had ${refunds} refunds, the most an order takes; refund further payments by another means`,
      );
    const left = refundableOf(machine);
    if (BigInt(amountMinor) > left) {
      // What is left goes with the refusal: the API words it as its own check does.
      refuse(
        CHANGE_REFUSALS.refundTooLarge,
        `at most ${left} minor units of ${machine.plan.currency} of ${ref} can still be refunded`,
        [left.toString()],
      );
    }
  }

  validateRefundResolution({ instructionRef, refundId }: ResolveRefund): void {
    this.refuseIfClosed();
    const refund = refundById(this.existing(instructionRef), refundId);
    if (!refund) refuse(CHANGE_REFUSALS.refundNotFound, `instruction ${instructionRef} has no refund ${refundId}`);
    const refusal = refundResolutionRefusal(refund, Date.now());
    if (refusal) refuse(CHANGE_REFUSALS.refundNotChangeable, refusal);
  }

  /** Ends a refund of unknown outcome with what the tenant found out; its loop, waiting to ask again, ends. */
  resolveRefund({ instructionRef, refundId, outcome, providerRef }: ResolveRefund): void {
    const machine = this.machines.get(instructionRef)!;
    const refund = refundById(machine, refundId)!;
    this.applyRefund(
      machine,
      refund,
      outcome === 'SUCCEEDED'
        ? { status: 'SUCCEEDED', providerRef: providerRef! }
        : { status: 'REJECTED', code: RESOLVED_NOT_REFUNDED },
    );
    refund.revision += 1;
    log.info('refund of unknown outcome resolved', {
      ...this.logFields(machine),
      refundNumber: refund.number,
      outcome,
    });
  }

  /**
   * The instruction is to be paid through another app: a refund under way that was asked for before
   * refunds kept their app (REFUND_KEEPS_ITS_APP) keeps the one it has gone through so far, and the
   * read model learns it (callbacks are matched, and uninstalls refused, by it).
   */
  private keepRefundApps(machine: InstructionMachine, appId: string | undefined): void {
    if (appId === undefined || appId === machine.plan.appId) return;
    const unkept = machine.refunds.filter((r) => r.status === 'PENDING' && r.appId === undefined);
    if (unkept.length === 0 || !patched(REFUND_FROM_BEFORE_KEEPS_ITS_APP)) return;
    for (const refund of unkept) {
      refund.appId = machine.plan.appId;
      this.refundChanged(machine, refund);
    }
  }

  /** The new refund, for its loop to be started. */
  createRefund({ instructionRef, refundId, amountMinor, reason }: CreateRefund): {
    machine: InstructionMachine;
    refund: RefundMachine;
  } {
    const machine = this.machines.get(instructionRef)!;
    const refund: RefundMachine = {
      refundId,
      instructionRef,
      number: machine.refunds.length + 1,
      amountMinor,
      currency: machine.plan.currency,
      ...(reason ? { reason } : {}),
      paymentRef: machine.providerRef!,
      // The payment's app makes its refund, even if the instruction is paid through another later.
      ...(patched(REFUND_KEEPS_ITS_APP) ? { appId: machine.plan.appId } : {}),
      status: 'PENDING',
      createdAt: nowIso(),
      attempts: 0,
      unanswered: false,
      revision: 0,
    };
    machine.refunds.push(refund);
    log.info('refund asked for', { ...this.logFields(machine), refundNumber: refund.number });
    this.refundChanged(machine, refund);
    return { machine, refund };
  }

  /** A refund moved on: the read model and the event log will show it; a success counts against the instruction. */
  refundChanged(machine: InstructionMachine, refund: RefundMachine): void {
    const dirty = this.state.dirtyRefunds!;
    if (!dirty.includes(refund.refundId)) dirty.push(refund.refundId);
    if (refund.toldStatus !== refund.status) {
      if (refund.status === 'SUCCEEDED')
        machine.refundedAmountMinor = (BigInt(machine.refundedAmountMinor) + BigInt(refund.amountMinor)).toString();
      refund.toldStatus = refund.status;
      this.tellRefund(machine, refund);
    }
    this.changed(machine);
  }

  /** Applies a refund call's result and marks what changed. */
  applyRefund(machine: InstructionMachine, refund: RefundMachine, result: RefundCallResult): void {
    applyRefundResult(refund, result, Date.now());
    this.refundChanged(machine, refund);
  }

  validateRetry({ instructionRef }: RetryInstruction): void {
    this.refuseIfClosed();
    if (this.state.cancelRequested)
      refuse(CHANGE_REFUSALS.orderNotActive, 'the order was cancelled; create a new order instead');
    const refusal = retryRefusal(this.existing(instructionRef));
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
  }

  /** The instruction open again, for its loop to be started. */
  retry({
    instructionRef,
    financialInstrumentId,
    instrumentId,
    dueAt,
    chargeAt,
  }: RetryInstruction): InstructionMachine {
    const machine = this.machines.get(instructionRef)!;
    this.countingMandateChecks(machine, () =>
      applyRetry(machine, { financialInstrumentId, instrumentId, dueAt, chargeAt }, Date.now()),
    );
    log.info('instruction retried', this.logFields(machine));
    this.changed(machine);
    return machine;
  }

  validateCancelOrder(): void {
    this.refuseUnlessActive();
    const busy = this.state.instructions
      .map((m) => (isAtRest(m.status) ? undefined : changeRefusal(m, 'cancel')))
      .find(Boolean);
    if (busy) refuse(CHANGE_REFUSALS.notChangeable, busy);
  }

  cancelOrder(): void {
    this.state.cancelRequested = true;
    for (const machine of this.state.instructions) {
      if (!isAtRest(machine.status)) {
        applyCancel(machine, nowIso());
        this.changed(machine);
      }
    }
  }

  validateCancelInstruction({ instructionRef }: CancelInstruction): void {
    this.refuseUnlessActive();
    const refusal = changeRefusal(this.existing(instructionRef), 'cancel');
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
  }

  cancelInstruction({ instructionRef }: CancelInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    applyCancel(machine, nowIso());
    this.changed(machine);
  }

  validateAmendment({ instructionRef, amendment }: AmendInstruction): void {
    this.refuseUnlessActive();
    const refusal = amendRefusal(this.existing(instructionRef), amendment);
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
  }

  amend({ instructionRef, amendment, metadata }: AmendInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    this.keepRefundApps(machine, amendment.appId);
    this.countingMandateChecks(machine, () => applyAmendment(machine, amendment, Date.now()));
    if (metadata) this.state.pendingMetadata[instructionRef] = metadata;
    this.tell(machine, 'instruction.amended');
    log.info('instruction amended', { ...this.logFields(machine), fields: Object.keys(amendment) });
    this.changed(machine);
  }

  validateAddition({ plan }: AddInstruction): void {
    this.refuseUnlessActive();
    // Taken in the same moment as a cancel of the order, an instruction would run (and charge) in an order that ends CANCELLED.
    if (this.state.cancelRequested) refuse(CHANGE_REFUSALS.orderNotActive, 'the order is being cancelled');
    if (this.machines.has(plan.instructionRef)) {
      refuse(CHANGE_REFUSALS.duplicate, `the order has an instruction ${plan.instructionRef} already`);
    }
    if (this.state.instructions.length >= MAX_INSTRUCTIONS_PER_ORDER) {
      refuse(CHANGE_REFUSALS.tooMany, `an order holds at most ${MAX_INSTRUCTIONS_PER_ORDER} instructions`);
    }
    if (dueBeforeOpen(plan.openAt, plan.dueAt)) refuse(CHANGE_REFUSALS.invalid, DUE_BEFORE_OPEN.message);
  }

  /** The new instruction, for its loop to be started. */
  add({ plan, metadata }: AddInstruction): InstructionMachine {
    const machine = newMachine({ ...plan, position: this.state.instructions.length });
    this.state.instructions.push(machine);
    this.machines.set(plan.instructionRef, machine);
    this.state.pendingMetadata[plan.instructionRef] = metadata;
    log.info('instruction added', this.logFields(machine));
    this.changed(machine);
    return machine;
  }

  validateResolution({ instructionRef, outcome, providerRef }: ResolveInstruction): void {
    this.refuseUnlessActive();
    const machine = this.existing(instructionRef);
    const refusal = resolutionRefusal(machine, Date.now());
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
    // A return kept for the payment of unknown outcome (by the reference it holds now: not one of an
    // earlier payment, nor one already returned) says it settled. Resolved otherwise (not paid, or
    // settled under another reference), the return would be dropped, and the money the bank took back
    // counted as collected, or a disputed payment collected again.
    const current = machine.providerRef;
    const returned = (this.state.returnsOfUnknown ?? []).some(
      (k) => k.instructionRef === instructionRef && k.result.providerRef === current && current !== machine.returnedRef,
    );
    const settledRef = outcome === 'SETTLED' ? (providerRef ?? current) : undefined;
    if (returned && settledRef !== current) {
      refuse(
        CHANGE_REFUSALS.notChangeable,
        `the provider told of a return of payment ${current} of ${instructionRef} while its outcome was unknown, so that payment settled: resolve it SETTLED under that reference (the return is then taken), or wait for the provider's answer under its key`,
      );
    }
  }

  resolve({ instructionRef, outcome, providerRef }: ResolveInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    const countsAmount = outcome === 'SETTLED' && patched(RESOLUTION_SETTLES_AMOUNT);
    applyResolution(machine, { outcome, providerRef }, nowIso(), countsAmount);
    log.info('unknown outcome resolved', { ...this.logFields(machine), outcome });
    // Told settled first (its settlement recorded), then taken back by a return kept meanwhile.
    this.changed(machine);
    this.takeReturnsOfUnknown(machine);
  }

  validatePayment({ instructionRef, appId, paymentMethod, amountMinor }: PayInstruction): void {
    this.refuseUnlessActive();
    const machine = this.existing(instructionRef);
    const refusal = payRefusal(machine, { appId, paymentMethod });
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
    if (amountMinor !== undefined && amountMinor !== machine.plan.amountMinor)
      refuse(
        CHANGE_REFUSALS.amountChanged,
        `instruction ${instructionRef} is now for ${machine.plan.amountMinor} minor units, not the ${amountMinor} the customer was shown`,
      );
  }

  pay({ instructionRef, appId, paymentMethod, financialInstrumentId, instrumentId }: PayInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    this.keepRefundApps(machine, appId);
    this.countingMandateChecks(machine, () =>
      applyPayment(machine, { appId, paymentMethod, financialInstrumentId, instrumentId }),
    );
    log.info('customer pays now', { ...this.logFields(machine), appId, paymentMethod });
    this.changed(machine);
  }

  // ---- the order's life ----------------------------------------------------------------------

  /** No instruction may move money unless something from outside moves it (a return, a retry). */
  allAtRest(): boolean {
    return this.state.instructions.every((m) => isAtRest(m.status));
  }

  /** All at rest, and no refund under way: nothing is left to do but wait. */
  quiet(): boolean {
    return this.allAtRest() && this.state.instructions.every((m) => m.refunds.every((r) => r.status !== 'PENDING'));
  }

  /** Every instruction at rest: the order says how it ended (once per end; it may end again after a reopening). */
  finish(): void {
    const { state } = this;
    const status = orderStatusOf(
      state.instructions.map((m) => m.status),
      state.cancelRequested,
    );
    if (status === 'ACTIVE' || status === state.status) return;
    state.status = status;
    this.tellOrder(END_EVENTS[status], { counts: this.counts() });
    log.info('order ended', { tenantId: state.tenantId, orderRef: state.orderRef, status });
    this.onChange();
  }

  /** The order's instructions now tell another outcome than the one it has (a settled payment returned and failed). */
  outcomeChanged(): boolean {
    return (
      orderStatusOf(
        this.state.instructions.map((m) => m.status),
        this.state.cancelRequested,
      ) !== this.state.status
    );
  }

  /** An instruction of an ended order moves again (a payment returned and collected again, a retry). */
  reopen(): void {
    if (!this.endedButMoving()) return;
    this.state.status = 'ACTIVE';
    this.state.orderDirty = true;
    log.info('order active again', { tenantId: this.state.tenantId, orderRef: this.state.orderRef });
    this.onChange();
  }

  /**
   * An instruction moved again (a return, a retry): an ended order is active again at once, even
   * while its run waits for a refund under way (REOPENS_WHEN_MOVED), so that it can be paid.
   */
  movedAgain(): void {
    // Asked only when it reopens: a patch marker for nothing would be a history event for nothing.
    if (this.endedButMoving() && patched(REOPENS_WHEN_MOVED)) this.reopen();
  }

  /** The order ended, and an instruction of it may move money again. */
  private endedButMoving(): boolean {
    return this.state.status !== 'ACTIVE' && !this.allAtRest();
  }

  /** Instructions by status. */
  counts(): Partial<Record<InstructionMachine['status'], number>> {
    return countByStatus(this.state.instructions.map((m) => m.status));
  }

  /**
   * Until when the ended order must stay open (ARCHITECTURE.md, "After settlement"): each settled
   * collection through its app's reversal window (a refund, a return or a chargeback may come), each
   * failed instruction as long as it may be retried. Undefined: nothing can come any more (or the
   * run began before ended orders stayed open).
   */
  staysOpenUntil(): number | undefined {
    if (!this.patches.has(PATCHES_BEFORE_START.STAYS_OPEN)) return undefined;
    const { state } = this;
    let until: number | undefined;
    const extend = (at: string | undefined, ms: number | undefined) => {
      if (at === undefined || !ms) return;
      const end = Date.parse(at) + ms;
      if (until === undefined || end > until) until = end;
    };
    for (const m of state.instructions) {
      if (m.status === 'SETTLED' && m.plan.direction === 'DEBIT')
        extend(m.settledAt, state.reversalWindowMs?.[m.plan.appId]);
      if (m.status === 'FAILED' && !state.cancelRequested) extend(m.failedAt, state.arrearsExpiryMs);
    }
    return until;
  }

  /** As the read model keeps it: until when the ended order stays open (ISO), null while it runs. */
  openUntil(): string | null {
    const until = this.state.status === 'ACTIVE' ? undefined : this.staysOpenUntil();
    return until === undefined ? null : new Date(until).toISOString();
  }

  /** The policy every instruction of the order follows; arrears expire only in runs since expiry came. */
  policy(): InstructionPolicy {
    const { state } = this;
    return {
      dunningDelaysMs: state.dunningDelaysMs,
      returnsPolicy: state.returnsPolicy ?? 'RECOLLECT',
      arrearsExpiryMs: this.arrearsExpiryMs(),
    };
  }

  /** How long arrears wait (undefined: for ever, as in histories from before expiry). */
  arrearsExpiryMs(): number | undefined {
    const ms = this.state.arrearsExpiryMs;
    return ms !== undefined && this.patches.has(PATCHES_BEFORE_START.ARREARS_EXPIRY) ? ms : undefined;
  }

  /**
   * How a call's result is applied, as far as this run's patches allow: a declined customer payment
   * leaves the instruction for the customer to pay another way (CUSTOMER_RETRY), and a debit refused
   * for want of an active mandate is tried again later (MANDATE_RECHECKED), and its arrears are counted
   * from its first refusal while the checks find the mandate still not active
   * (MANDATE_CHECK_KEEPS_ARREARS_START).
   */
  resultOptions(
    machine: InstructionMachine,
    result: CallResult,
  ): { customerMayRetry: boolean; recheckMandate: boolean; keepsArrearsStart: boolean; replacedSecretHolds: boolean } {
    return {
      customerMayRetry:
        machine.customerPaying === true &&
        result.status === 'DECLINED' &&
        this.patches.has(PATCHES_BEFORE_START.CUSTOMER_RETRY),
      recheckMandate: isMandateRefusal(result) && patched(MANDATE_RECHECKED),
      keepsArrearsStart: isMandateStillInactive(machine, result) && patched(MANDATE_CHECK_KEEPS_ARREARS_START),
      replacedSecretHolds: result.status === 'RETURNED' && underReplacedSecretHolds(result),
    };
  }

  // ---- what others see: the read model, the event log, the operators' view -------------------

  /** Marks a change: the read model, the event log and the operators' view will show it. */
  changed(machine: InstructionMachine): void {
    if (!this.state.dirty.includes(machine.plan.instructionRef)) this.state.dirty.push(machine.plan.instructionRef);
    this.onChange();
    if (machine.status !== machine.toldStatus) {
      machine.toldStatus = machine.status;
      const type = EVENT_OF_STATUS[machine.status];
      if (type) this.tell(machine, type);
      log.info('instruction state', this.logFields(machine));
    }
  }

  private tellRefund(machine: InstructionMachine, refund: RefundMachine): void {
    const type = REFUND_EVENTS[refund.status];
    this.state.events.push({
      eventKey: `${this.state.orderId}:${machine.plan.instructionRef}:refund:${refund.number}:${type}`,
      type,
      occurredAt: nowIso(),
      instruction: eventInstructionOf(this.instructionOf(machine)),
      refund: refundOf(refund),
    });
  }

  /** Refunds changed since the last projection, as the read model holds them. */
  takeDirtyRefunds() {
    const ids = this.state.dirtyRefunds!.splice(0);
    return this.state.instructions.flatMap((m) => m.refunds.filter((r) => ids.includes(r.refundId)).map(refundOf));
  }

  /** Records an instruction event, keyed by its place in the instruction's story. */
  private tell(machine: InstructionMachine, type: EventType): void {
    machine.events += 1;
    this.state.events.push({
      eventKey: `${this.state.orderId}:${machine.plan.instructionRef}:${machine.events}:${type}`,
      type,
      occurredAt: nowIso(),
      instruction: eventInstructionOf(this.instructionOf(machine)),
    });
  }

  /**
   * Records an order event. `order.created` is told once; an end is told each time the order ends
   * (it may end again after a reopening), the first time under the key it always had.
   */
  tellOrder(type: EventType, extra: Pick<RecordedEvent, 'counts'> = {}): void {
    const told = this.state.orderEvents.filter((t) => t === type).length;
    if (told > 0 && type === 'order.created') return;
    this.state.orderEvents.push(type);
    const eventKey = `${this.state.orderId}:order:${type}${told > 0 ? `:${told + 1}` : ''}`;
    this.state.events.push({ eventKey, type, occurredAt: nowIso(), ...extra });
    this.state.orderDirty = true;
  }

  /** The instruction as the read model and the events show it. */
  instructionOf(machine: InstructionMachine): Instruction {
    return instructionOf(machine.plan, machine, this.nextActionOf(machine));
  }

  /** The next moment something is due to happen to the instruction, as the order plans it (arrears expiring too). */
  nextActionOf(machine: InstructionMachine): string | undefined {
    return nextActionAt(machine, this.arrearsExpiryMs());
  }

  instruction(instructionRef: string): InstructionMachine {
    return this.machines.get(instructionRef)!;
  }

  logFields(machine: InstructionMachine) {
    return {
      tenantId: this.state.tenantId,
      orderRef: this.state.orderRef,
      instructionRef: machine.plan.instructionRef,
      status: machine.status,
      attempts: machine.attempts,
    };
  }

  private existing(instructionRef: string): InstructionMachine {
    const machine = this.machines.get(instructionRef);
    if (!machine) refuse(CHANGE_REFUSALS.notFound, `the order has no instruction ${instructionRef}`);
    return machine;
  }

  private refuseUnlessActive(): void {
    const { status } = this.state;
    if (status !== 'ACTIVE') refuse(CHANGE_REFUSALS.orderNotActive, orderEndedMessage(status));
  }
}

function refuse(type: string, message: string, details?: unknown[]): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true, ...(details ? { details } : {}) });
}

/** Workflow time: Date.now() inside a workflow is the deterministic workflow clock. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** An instruction's refund by its id. */
function refundById(machine: InstructionMachine, refundId: string): RefundMachine | undefined {
  return machine.refunds.find((r) => r.refundId === refundId);
}

/**
 * Whether the order holds the payment its instruction last named as not taken: declined, refused or
 * resolved NOT_PAID, and not since taken, returned or in flight under the same key. A call under way
 * that is not asking about an unknown outcome is a new payment, under a new key.
 */
function holdsNotTaken(machine: InstructionMachine, providerRef: string): boolean {
  // Settled, then returned (the instruction LATE or FAILED since): its settlement told again.
  if (machine.returnedRef === providerRef) return false;
  if (machine.status === 'PROCESSING') return !machine.pending && !machine.unanswered;
  return machine.status !== 'SETTLED' && machine.status !== 'RETURNED';
}
