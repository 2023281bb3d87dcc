// The order as its workflow holds it (ARCHITECTURE.md, "Temporal design"): one serialisable state,
// and what every message does to it. Validators refuse, handlers change; neither waits. The
// workflow function wires these to Temporal; the loops, the projector and the operator view read
// and mark what changed here.
import { ApplicationFailure, log, patched } from '@temporalio/workflow';
import { DEFAULT_DUNNING_DELAYS_MS } from '../../domain/dunning.js';
import { dueBeforeOpen, DUE_BEFORE_OPEN, type Instruction } from '../../domain/instruction.js';
import { isFinal, type OrderStatus } from '../../domain/instruction-status.js';
import type { EventType } from '../../domain/webhook.js';
import type { RecordedEvent } from '../contract/activities.js';
import { eventInstructionOf, instructionOf, instructionViewOf } from '../contract/instruction-codec.js';
import { MAX_INSTRUCTIONS_PER_ORDER } from '../contract/limits.js';
import type {
  AddInstruction,
  AmendInstruction,
  CancelInstruction,
  OrderView,
  PaymentOrderInput,
  PayInstruction,
  ResolveInstruction,
  SignalledResult,
} from '../contract/messages.js';
import { CHANGE_REFUSALS } from '../contract/refusals.js';
import {
  amendRefusal,
  applyAmendment,
  applyCancel,
  applyPayment,
  applyResolution,
  awaits,
  changeRefusal,
  newMachine,
  nextActionAt,
  payRefusal,
  resolutionRefusal,
  type CallResult,
  type InstructionMachine,
} from './instruction-machine.js';

/** The whole order, serialisable: what continue-as-new carries to the next run. */
export interface OrderState {
  tenantId: string;
  orderId: string;
  orderRef: string;
  dunningDelaysMs: number[];
  status: OrderStatus;
  cancelRequested: boolean;
  instructions: InstructionMachine[];
  /** Instructions (by ref) changed since the read model last took them, and whether the order row did. */
  dirty: string[];
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
  shown: { status?: string; nextActionAt?: string | null; totals?: string };
}

/** The event each status tells, when an instruction reaches it. */
const STATUS_EVENTS: Partial<Record<InstructionMachine['status'], EventType>> = {
  OPEN: 'instruction.opened',
  PROCESSING: 'instruction.processing',
  SETTLED: 'instruction.settled',
  LATE: 'instruction.late',
  FAILED: 'instruction.failed',
  CANCELLED: 'instruction.cancelled',
};

const CUSTOMER_RETRY_PATCH = 'customer-decline-leaves-instruction-payable';

export class OrderEntity {
  private readonly machines: Map<string, InstructionMachine>;

  constructor(
    readonly state: OrderState,
    /** Called on every change, so the operators' view is brought up to date. */
    private readonly onChange: () => void,
  ) {
    this.machines = new Map(state.instructions.map((m) => [m.plan.instructionRef, m]));
  }

  static initialState(input: PaymentOrderInput): OrderState {
    return {
      tenantId: input.tenantId,
      orderId: input.orderId,
      orderRef: input.orderRef,
      dunningDelaysMs: input.dunningDelaysMs ?? [...DEFAULT_DUNNING_DELAYS_MS],
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
    };
  }

  /** Only a payment in flight takes a result, from its own app; a late, repeated or foreign callback changes nothing. */
  takeResult(result: SignalledResult): void {
    const machine = this.state.instructions.find((m) => awaits(m, result) && !m.pending?.result);
    if (!machine?.pending) return;
    machine.pending.result = result;
    machine.revision += 1;
  }

  validateCancelOrder(): void {
    this.refuseUnlessActive();
    const busy = this.state.instructions
      .map((m) => (isFinal(m.status) ? undefined : changeRefusal(m, 'cancel')))
      .find(Boolean);
    if (busy) refuse(CHANGE_REFUSALS.notChangeable, busy);
  }

  cancelOrder(): void {
    this.state.cancelRequested = true;
    for (const machine of this.state.instructions) {
      if (!isFinal(machine.status)) {
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
    applyAmendment(machine, amendment, Date.now());
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

  validateResolution({ instructionRef }: ResolveInstruction): void {
    this.refuseUnlessActive();
    const refusal = resolutionRefusal(this.existing(instructionRef));
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
  }

  resolve({ instructionRef, outcome, providerRef }: ResolveInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    applyResolution(machine, { outcome, providerRef }, nowIso());
    log.info('unknown outcome resolved', { ...this.logFields(machine), outcome });
    this.changed(machine);
  }

  validatePayment({ instructionRef, appId, paymentMethod }: PayInstruction): void {
    this.refuseUnlessActive();
    const refusal = payRefusal(this.existing(instructionRef), { appId, paymentMethod });
    if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
  }

  pay({ instructionRef, appId, paymentMethod, financialInstrumentId }: PayInstruction): void {
    const machine = this.machines.get(instructionRef)!;
    applyPayment(machine, { appId, paymentMethod, financialInstrumentId });
    log.info('customer pays now', { ...this.logFields(machine), appId, paymentMethod });
    this.changed(machine);
  }

  // ---- the order's life ----------------------------------------------------------------------

  allFinal(): boolean {
    return this.state.instructions.every((m) => isFinal(m.status));
  }

  /** Every instruction is final: the order ends, and says how. */
  finish(): void {
    const { state } = this;
    state.status =
      state.cancelRequested || state.instructions.every((m) => m.status === 'CANCELLED') ? 'CANCELLED' : 'COMPLETED';
    this.tellOrder(state.status === 'CANCELLED' ? 'order.cancelled' : 'order.completed');
    this.onChange();
  }

  /**
   * Since this patch a declined customer payment leaves the instruction for the customer to pay
   * another way; histories from before it replay with the decline failing it (or dunning it).
   */
  customerRetry(machine: InstructionMachine, result: CallResult): { customerMayRetry: boolean } {
    return {
      customerMayRetry:
        machine.customerPaying === true && result.status === 'DECLINED' && patched(CUSTOMER_RETRY_PATCH),
    };
  }

  // ---- what others see: the read model, the event log, the operators' view -------------------

  /** Marks a change: the read model, the event log and the operators' view will show it. */
  changed(machine: InstructionMachine): void {
    if (!this.state.dirty.includes(machine.plan.instructionRef)) this.state.dirty.push(machine.plan.instructionRef);
    this.onChange();
    if (machine.status !== machine.toldStatus) {
      machine.toldStatus = machine.status;
      const type = STATUS_EVENTS[machine.status];
      if (type) this.tell(machine, type);
      log.info('instruction state', this.logFields(machine));
    }
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

  tellOrder(type: EventType): void {
    if (this.state.orderEvents.includes(type)) return;
    this.state.orderEvents.push(type);
    this.state.events.push({ eventKey: `${this.state.orderId}:order:${type}`, type, occurredAt: nowIso() });
    this.state.orderDirty = true;
  }

  /** The instruction as the read model and the events show it. */
  instructionOf(machine: InstructionMachine): Instruction {
    return instructionOf(machine.plan, machine, nextActionAt(machine));
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
    if (this.state.status !== 'ACTIVE') refuse(CHANGE_REFUSALS.orderNotActive, `the order is ${this.state.status}`);
  }
}

function refuse(type: string, message: string): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Workflow time: Date.now() inside a workflow is the deterministic workflow clock. */
export function nowIso(): string {
  return new Date().toISOString();
}
