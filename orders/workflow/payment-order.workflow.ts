// One payment order (ARCHITECTURE.md, "Temporal design"): every instruction runs its own loop over
// the state machine of instruction-machine.ts, waiting with condition(changed, until) so that any
// change re-plans its timer at once. All state is one serialisable object, carried by
// continue-as-new in any state. Changes arrive as validated updates; the read model is projected in
// batches by a loop of its own, never on the money path.
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { OrderActivities, ProjectedInstruction, RecordedEvent } from '../contract/activities.js';
import type { EventType } from '../../domain/webhook.js';
import { DEFAULT_DUNNING_DELAYS_MS } from '../../domain/dunning.js';
import { isFinal, type OrderStatus } from '../../domain/instruction-status.js';
import { paymentIdempotencyKey, type PaymentOrderInput } from '../../domain/order.js';
import { APP_CREDENTIALS_UNREADABLE, APP_NOT_INSTALLED, PROVIDER_REJECTED } from '../../domain/payment-failures.js';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
  CHANGE_REFUSALS,
  orderStateQuery,
  payInstructionUpdate,
  providerResultSignal,
  type AddInstruction,
  type AmendInstruction,
  type CancelInstruction,
  type ChangeAnswer,
  type OrderView,
  type PayInstruction,
} from '../contract/messages.js';
import {
  amendRefusal,
  applyAmendment,
  applyCancel,
  applyPayment,
  applyResult,
  awaits,
  changeRefusal,
  decide,
  newMachine,
  nextActionAt,
  payRefusal,
  startCall,
  stillPending,
  transition,
  type CallResult,
  type InstructionMachine,
} from './instruction-machine.js';
import { NextActionAtKey, OrderStatusKey } from '../contract/search-attributes.js';

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

export interface PaymentOrderWorkflowInput extends PaymentOrderInput {
  /** Set by continue-as-new: the state to resume from (instructions is then empty). */
  continued?: OrderState;
  /** Continue as new after this many history events (default 4,000; tests set less). */
  continueAsNewAfterEvents?: number;
}

const CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;

/** The event each status tells, when an instruction reaches it. */
const STATUS_EVENTS: Partial<Record<InstructionMachine['status'], EventType>> = {
  OPEN: 'instruction.opened',
  PROCESSING: 'instruction.processing',
  SETTLED: 'instruction.settled',
  LATE: 'instruction.late',
  FAILED: 'instruction.failed',
  CANCELLED: 'instruction.cancelled',
};
const MAX_INSTRUCTIONS = 500;
const CUSTOMER_RETRY_PATCH = 'customer-decline-leaves-instruction-payable';
/** How long an update waits for the read model to show its change before answering anyway. */
const PROJECTION_WAIT_MS = 5_000;

// The read model must catch up eventually, so projection retries without limit; it never blocks a payment.
const PROJECTING = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
} as const;
const { projectOrder } = proxyActivities<OrderActivities>(PROJECTING);

// A provider call is bounded: after these attempts the instruction goes LATE and the provider is
// asked about the same idempotency key an hour later, so a payment it did take is never taken twice.
const PAYMENT_CALL = {
  startToCloseTimeout: '1 minute',
  // The activity heartbeats while the provider answers: a dead worker's call is retried within seconds.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8 },
} as const;
const { executePayment } = proxyActivities<OrderActivities>(PAYMENT_CALL);

// Asking about a payment: a few quick attempts; if the provider does not answer, it is asked again later.
const ASKING = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 4 },
} as const;
const { getPaymentStatus, lookupPayment } = proxyActivities<OrderActivities>(ASKING);

/** Activity failures no retry cures: the instruction waits LATE with this failure code until a change. */
const PERMANENT_FAILURES: Record<string, string> = {
  [APP_NOT_INSTALLED]: 'app_not_installed',
  [APP_CREDENTIALS_UNREADABLE]: 'app_credentials_unreadable',
  [PROVIDER_REJECTED]: 'provider_rejected',
};

export async function paymentOrderWorkflow(input: PaymentOrderWorkflowInput): Promise<OrderView> {
  const state = input.continued ?? initialState(input);
  const historyLimit = input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS;
  const machines = new Map(state.instructions.map((m) => [m.plan.instructionRef, m]));
  const loops = new Set<Promise<void>>();
  /** Continuing as new: every loop stops at its next wait, the read model catches up, then a new run resumes. */
  let stopping = false;
  let projecting = false;
  let projectedVersion = BigInt(state.lastVersion);
  let operatorViewStale = true;

  // ---- messages ------------------------------------------------------------------------------

  setHandler(orderStateQuery, () => view(state));

  setHandler(providerResultSignal, (result) => {
    // Only a payment in flight takes a result; a late or repeated callback changes nothing.
    const machine = state.instructions.find((m) => awaits(m, result) && !m.pending?.result);
    if (!machine?.pending) return;
    machine.pending.result = result;
    machine.revision += 1;
  });

  setHandler(
    cancelOrderUpdate,
    async () => {
      state.cancelRequested = true;
      for (const machine of state.instructions) {
        if (!isFinal(machine.status)) {
          applyCancel(machine, nowIso());
          changed(machine);
        }
      }
      return answer();
    },
    {
      validator: () => {
        refuseUnlessActive();
        const busy = state.instructions
          .map((m) => (isFinal(m.status) ? undefined : changeRefusal(m, 'cancel')))
          .find(Boolean);
        if (busy) refuse(CHANGE_REFUSALS.notChangeable, busy);
      },
    },
  );

  setHandler(
    cancelInstructionUpdate,
    async ({ instructionRef }) => {
      const machine = machines.get(instructionRef)!;
      applyCancel(machine, nowIso());
      changed(machine);
      return answer();
    },
    {
      validator: ({ instructionRef }: CancelInstruction) => {
        refuseUnlessActive();
        const refusal = changeRefusal(existing(instructionRef), 'cancel');
        if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
      },
    },
  );

  setHandler(
    amendInstructionUpdate,
    async ({ instructionRef, amendment, metadata }) => {
      const machine = machines.get(instructionRef)!;
      applyAmendment(machine, amendment, Date.now());
      if (metadata) state.pendingMetadata[instructionRef] = metadata;
      tell(machine, 'instruction.amended');
      log.info('instruction amended', { ...logFields(machine), fields: Object.keys(amendment) });
      changed(machine);
      return answer();
    },
    {
      validator: ({ instructionRef, amendment }: AmendInstruction) => {
        refuseUnlessActive();
        const refusal = amendRefusal(existing(instructionRef), amendment);
        if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
      },
    },
  );

  setHandler(
    addInstructionUpdate,
    async ({ plan, metadata }) => {
      const machine = newMachine({ ...plan, position: state.instructions.length });
      state.instructions.push(machine);
      machines.set(plan.instructionRef, machine);
      state.pendingMetadata[plan.instructionRef] = metadata;
      log.info('instruction added', logFields(machine));
      changed(machine);
      start(machine);
      return answer();
    },
    {
      validator: ({ plan }: AddInstruction) => {
        refuseUnlessActive();
        if (machines.has(plan.instructionRef))
          refuse(CHANGE_REFUSALS.duplicate, `the order has an instruction ${plan.instructionRef} already`);
        if (state.instructions.length >= MAX_INSTRUCTIONS)
          refuse(CHANGE_REFUSALS.tooMany, `an order holds at most ${MAX_INSTRUCTIONS} instructions`);
        if (Date.parse(plan.dueAt) < Date.parse(plan.openAt))
          refuse(CHANGE_REFUSALS.invalid, 'dueDate must not be before openDate');
      },
    },
  );

  setHandler(
    payInstructionUpdate,
    async ({ instructionRef, appId, paymentMethod, financialInstrumentId }) => {
      const machine = machines.get(instructionRef)!;
      applyPayment(machine, { appId, paymentMethod, financialInstrumentId });
      log.info('customer pays now', { ...logFields(machine), appId, paymentMethod });
      changed(machine);
      return answer();
    },
    {
      validator: ({ instructionRef, appId, paymentMethod }: PayInstruction) => {
        refuseUnlessActive();
        const refusal = payRefusal(existing(instructionRef), { appId, paymentMethod });
        if (refusal) refuse(CHANGE_REFUSALS.notChangeable, refusal);
      },
    },
  );

  /**
   * Since this patch a declined customer payment leaves the instruction for the customer to pay
   * another way; histories from before it replay with the decline failing it (or dunning it).
   */
  function customerRetry(machine: InstructionMachine, result: CallResult): { customerMayRetry: boolean } {
    return {
      customerMayRetry:
        machine.customerPaying === true && result.status === 'DECLINED' && patched(CUSTOMER_RETRY_PATCH),
    };
  }

  function logFields(machine: InstructionMachine) {
    return {
      tenantId: state.tenantId,
      orderRef: state.orderRef,
      instructionRef: machine.plan.instructionRef,
      status: machine.status,
      attempts: machine.attempts,
    };
  }

  function existing(instructionRef: string): InstructionMachine {
    const machine = machines.get(instructionRef);
    if (!machine) refuse(CHANGE_REFUSALS.notFound, `the order has no instruction ${instructionRef}`);
    return machine;
  }

  function refuseUnlessActive(): void {
    if (state.status !== 'ACTIVE') refuse(CHANGE_REFUSALS.orderNotActive, `the order is ${state.status}`);
  }

  /** An update's answer, once the read model shows its change (or after a few seconds, if it is slow). */
  async function answer(): Promise<ChangeAnswer> {
    const version = BigInt(state.lastVersion) + 1n;
    const projected = await condition(() => projectedVersion >= version, PROJECTION_WAIT_MS);
    return { projected };
  }

  // ---- instructions --------------------------------------------------------------------------

  function start(machine: InstructionMachine): void {
    if (stopping) return;
    const loop = runInstruction(machine).finally(() => loops.delete(loop));
    loops.add(loop);
  }

  async function runInstruction(machine: InstructionMachine): Promise<void> {
    for (;;) {
      const step = decide(machine, Date.now());
      switch (step.kind) {
        case 'done':
          return;
        case 'open':
          transition(machine, 'OPEN', nowIso());
          changed(machine);
          break;
        case 'late':
          transition(machine, 'LATE', nowIso());
          machine.failureCode = step.code;
          changed(machine);
          break;
        case 'call':
          await call(machine);
          break;
        case 'settle':
          applyResult(machine, step.result, Date.now(), state.dunningDelaysMs, customerRetry(machine, step.result));
          changed(machine);
          break;
        case 'ask':
          await ask(machine, step.providerRef);
          break;
        case 'wait': {
          if (stopping) return;
          const revision = machine.revision;
          const woken = () => machine.revision !== revision || stopping;
          const summary = `${machine.plan.instructionRef} ${step.why}`;
          if (step.until === undefined) await condition(woken);
          else await condition(woken, Math.max(1, Date.parse(step.until) - Date.now()), { summary });
          break;
        }
      }
    }
  }

  async function call(machine: InstructionMachine): Promise<void> {
    const askFirst = machine.unanswered;
    startCall(machine, nowIso());
    changed(machine);
    const idempotencyKey = paymentIdempotencyKey(
      state.tenantId,
      state.orderRef,
      machine.plan.instructionRef,
      machine.keyAttempt,
    );
    let result: CallResult | undefined;
    if (askFirst) {
      // The last call with this key went unanswered: the provider may have the payment already.
      result = await lookup(machine, idempotencyKey);
    }
    result ??= await execute(machine, idempotencyKey);
    applyResult(machine, result, Date.now(), state.dunningDelaysMs, customerRetry(machine, result));
    changed(machine);
  }

  async function execute(machine: InstructionMachine, idempotencyKey: string): Promise<CallResult> {
    const { plan } = machine;
    try {
      return await executePayment.executeWithOptions(
        {
          ...PAYMENT_CALL,
          summary: `${plan.direction === 'DEBIT' ? 'collect' : 'pay out'} ${plan.instructionRef} via ${plan.appId} (${idempotencyKey.split(':').at(-1)})`,
        },
        [
          {
            appId: plan.appId,
            idempotencyKey,
            request: {
              tenantId: state.tenantId,
              orderRef: state.orderRef,
              instructionRef: plan.instructionRef,
              direction: plan.direction,
              paymentMethod: plan.paymentMethod,
              amountMinor: plan.amountMinor,
              currency: plan.currency,
              country: plan.country,
              financialInstrumentId: plan.financialInstrumentId!,
            },
          },
        ],
      );
    } catch (err) {
      return failureOf(err, machine);
    }
  }

  /** What the provider knows of the key: its payment, or undefined when it has none (the call never reached it). */
  async function lookup(machine: InstructionMachine, idempotencyKey: string): Promise<CallResult | undefined> {
    try {
      const found = await lookupPayment.executeWithOptions(
        { ...ASKING, summary: `ask about ${machine.plan.instructionRef} (${idempotencyKey.split(':').at(-1)})` },
        [{ appId: machine.plan.appId, tenantId: state.tenantId, idempotencyKey }],
      );
      return found ?? undefined;
    } catch (err) {
      return failureOf(err, machine);
    }
  }

  async function ask(machine: InstructionMachine, providerRef: string): Promise<void> {
    try {
      const status = await getPaymentStatus.executeWithOptions(
        { ...ASKING, summary: `ask about ${machine.plan.instructionRef} (${providerRef})` },
        [{ appId: machine.plan.appId, tenantId: state.tenantId, providerRef }],
      );
      if (status.status === 'PENDING') stillPending(machine, Date.now());
      else applyResult(machine, status, Date.now(), state.dunningDelaysMs, customerRetry(machine, status));
    } catch {
      // Unanswered (or refused): the callback may still come; ask again later.
      stillPending(machine, Date.now());
    }
    changed(machine);
  }

  function failureOf(err: unknown, machine: InstructionMachine): CallResult {
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
      const code = PERMANENT_FAILURES[err.cause.type ?? ''];
      if (code) {
        const detail =
          err.cause.type === PROVIDER_REJECTED ? (err.cause.details?.[0] as string | undefined) : undefined;
        return { status: 'REJECTED', code: (detail ? `${code}:${detail}` : code).slice(0, 64) };
      }
    }
    if (err instanceof ActivityFailure) {
      log.warn('payment provider unanswered after retries', logFields(machine));
      return { status: 'UNANSWERED' };
    }
    throw err;
  }

  // ---- what others see: read model, search attributes, memo -----------------------------------

  /** Marks a change: the read model, the event log and the operators' view will show it. */
  function changed(machine: InstructionMachine): void {
    if (!state.dirty.includes(machine.plan.instructionRef)) state.dirty.push(machine.plan.instructionRef);
    operatorViewStale = true;
    if (machine.status !== machine.toldStatus) {
      machine.toldStatus = machine.status;
      const type = STATUS_EVENTS[machine.status];
      if (type) tell(machine, type);
      log.info('instruction state', logFields(machine));
    }
  }

  /** Records an instruction event, keyed by its place in the instruction's story. */
  function tell(machine: InstructionMachine, type: EventType): void {
    machine.events += 1;
    const { plan } = machine;
    state.events.push({
      eventKey: `${state.orderId}:${plan.instructionRef}:${machine.events}:${type}`,
      type,
      occurredAt: nowIso(),
      instruction: {
        instructionRef: plan.instructionRef,
        direction: plan.direction,
        amountMinor: plan.amountMinor,
        currency: plan.currency,
        dueAt: plan.dueAt,
        status: machine.status,
        attempts: machine.attempts,
        appId: plan.appId,
        paymentMethod: plan.paymentMethod,
        providerRef: machine.providerRef,
        failureCode: machine.failureCode,
        voucherCode: machine.voucherCode,
      },
    });
  }

  function tellOrder(type: EventType): void {
    if (state.orderEvents.includes(type)) return;
    state.orderEvents.push(type);
    state.events.push({ eventKey: `${state.orderId}:order:${type}`, type, occurredAt: nowIso() });
    state.orderDirty = true;
  }

  function nextVersion(): bigint {
    // From workflow time, which a reset or a continued run only moves forward: versions rise across runs.
    const fromClock = BigInt(Date.now()) * 1000n;
    const last = BigInt(state.lastVersion);
    const version = fromClock > last ? fromClock : last + 1n;
    state.lastVersion = version.toString();
    return version;
  }

  async function runProjector(): Promise<void> {
    for (;;) {
      await condition(() => state.dirty.length > 0 || state.orderDirty || state.events.length > 0);
      const refs = state.dirty.splice(0);
      const events = state.events.splice(0);
      state.orderDirty = false;
      const metadata = Object.fromEntries(
        refs.filter((ref) => state.pendingMetadata[ref]).map((ref) => [ref, state.pendingMetadata[ref]]),
      );
      const version = nextVersion();
      projecting = true;
      await projectOrder.executeWithOptions({ ...PROJECTING, summary: `project ${refs.length} instruction(s)` }, [
        {
          tenantId: state.tenantId,
          orderId: state.orderId,
          orderRef: state.orderRef,
          version: version.toString(),
          status: state.status,
          instructions: refs.map((ref) => projectedRow(machines.get(ref)!, metadata[ref])),
          events,
        },
      ]);
      for (const ref of Object.keys(metadata)) {
        if (state.pendingMetadata[ref] === metadata[ref]) delete state.pendingMetadata[ref];
      }
      projecting = false;
      projectedVersion = version;
    }
  }

  async function refreshOperatorView(): Promise<void> {
    for (;;) {
      await condition(() => operatorViewStale);
      operatorViewStale = false;
      const next =
        state.instructions
          .map(nextActionAt)
          .filter((at): at is string => at !== undefined)
          .sort()[0] ?? null;
      if (state.shown.status !== state.status || state.shown.nextActionAt !== next) {
        upsertSearchAttributes([
          { key: OrderStatusKey, value: state.status },
          { key: NextActionAtKey, value: next ? new Date(next) : null },
        ]);
        state.shown.status = state.status;
        state.shown.nextActionAt = next;
      }
      const totals = JSON.stringify(totalsOf(state.instructions));
      if (state.shown.totals !== totals) {
        upsertMemo({ totals: JSON.parse(totals) as unknown });
        state.shown.totals = totals;
      }
    }
  }

  // ---- the order's life ----------------------------------------------------------------------

  tellOrder('order.created');
  for (const machine of state.instructions) start(machine);
  void runProjector();
  void refreshOperatorView();

  const allFinal = () => state.instructions.every((m) => isFinal(m.status));
  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
  await condition(() => allFinal() || historyIsLong());

  if (allFinal()) {
    state.status = orderStatusOf(state);
    tellOrder(state.status === 'CANCELLED' ? 'order.cancelled' : 'order.completed');
    operatorViewStale = true;
  } else {
    stopping = true;
    await condition(() => loops.size === 0);
  }
  // Nothing is left unsaid: the read model has every change, and every update has answered.
  await condition(
    () =>
      state.dirty.length === 0 &&
      state.events.length === 0 &&
      !state.orderDirty &&
      !projecting &&
      !operatorViewStale &&
      allHandlersFinished(),
  );
  if (!allFinal()) {
    log.info('continuing as new', {
      tenantId: state.tenantId,
      orderRef: state.orderRef,
      events: workflowInfo().historyLength,
    });
    await continueAsNew<typeof paymentOrderWorkflow>({ ...input, instructions: [], continued: state });
  }
  return view(state);
}

function initialState(input: PaymentOrderInput): OrderState {
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

function orderStatusOf(state: OrderState): OrderStatus {
  return state.cancelRequested || state.instructions.every((m) => m.status === 'CANCELLED') ? 'CANCELLED' : 'COMPLETED';
}

function projectedRow(machine: InstructionMachine, metadata: Record<string, string> | undefined): ProjectedInstruction {
  const { plan } = machine;
  return {
    ...plan,
    status: machine.status,
    attempts: machine.attempts,
    providerRef: machine.providerRef,
    voucherCode: machine.voucherCode,
    failureCode: machine.failureCode,
    nextActionAt: nextActionAt(machine),
    openedAt: machine.openedAt,
    processingAt: machine.processingAt,
    lateAt: machine.lateAt,
    settledAt: machine.settledAt,
    failedAt: machine.failedAt,
    cancelledAt: machine.cancelledAt,
    metadata,
  };
}

/** Money per currency, in minor units: collected and paid out so far, and still to move. */
function totalsOf(
  instructions: InstructionMachine[],
): Record<string, { collected: string; paidOut: string; outstanding: string }> {
  const sums = new Map<string, { collected: bigint; paidOut: bigint; outstanding: bigint }>();
  for (const { plan, status } of instructions) {
    const sum = sums.get(plan.currency) ?? { collected: 0n, paidOut: 0n, outstanding: 0n };
    const amount = BigInt(plan.amountMinor);
    if (status === 'SETTLED') sum[plan.direction === 'DEBIT' ? 'collected' : 'paidOut'] += amount;
    else if (!isFinal(status)) sum.outstanding += amount;
    sums.set(plan.currency, sum);
  }
  return Object.fromEntries(
    [...sums].map(([currency, sum]) => [
      currency,
      { collected: sum.collected.toString(), paidOut: sum.paidOut.toString(), outstanding: sum.outstanding.toString() },
    ]),
  );
}

function view(state: OrderState): OrderView {
  return {
    orderRef: state.orderRef,
    status: state.status,
    instructions: state.instructions.map((m) => ({
      instructionRef: m.plan.instructionRef,
      status: m.status,
      attempts: m.attempts,
      amountMinor: m.plan.amountMinor,
      currency: m.plan.currency,
      openAt: m.plan.openAt,
      dueAt: m.plan.dueAt,
      appId: m.plan.appId,
      paymentMethod: m.plan.paymentMethod,
      providerRef: m.providerRef,
      voucherCode: m.voucherCode,
      failureCode: m.failureCode,
      nextActionAt: nextActionAt(m),
      settledAt: m.settledAt,
    })),
  };
}

function refuse(type: string, message: string): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Workflow time: Date.now() inside a workflow is the deterministic workflow clock. */
function nowIso(): string {
  return new Date().toISOString();
}
