import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { OrderActivities } from '../activities/order-activities.js';
import { APP_CREDENTIALS_UNREADABLE, APP_NOT_INSTALLED, PROVIDER_REJECTED } from '../domain/payment-failures.js';
import { DEFAULT_DUNNING_DELAYS_MS } from '../domain/dunning.js';
import { canTransition, isFinal, type InstructionStatus, type OrderStatus } from '../domain/instruction-status.js';
import {
  paymentIdempotencyKey,
  type InstructionState,
  type OrderSnapshot,
  type PaymentOrderInput,
  type PlannedInstruction,
} from '../domain/order.js';
import type { PaymentOutcome, ProviderResult } from '../domain/payment-outcome.js';
import { orderStateQuery, providerResultSignal } from './definitions.js';
import { NextActionAtKey, OrderStatusKey } from './search-attributes.js';

/** After a provider call went unanswered through all its activity retries, ask again this much later. */
const UNANSWERED_RETRY_MS = 60 * 60 * 1000;

// The read model must eventually catch up, so projection retries without limit.
const { projectOrderState } = proxyActivities<OrderActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

// A provider call is bounded: after these attempts the instruction goes LATE and the call is made
// again an hour later with the same idempotency key, so a payment the provider did take is never taken twice.
const { executePayment } = proxyActivities<OrderActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 8,
  },
});

// Asking a provider about a PENDING payment: a few quick attempts; if it does not answer, ask again later.
const { getPaymentStatus } = proxyActivities<OrderActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 4 },
});

/** When a PENDING payment's callback does not come, the provider is asked after these waits (the last repeats). */
const STATUS_POLL_DELAYS_MS = [5 * 60_000, 30 * 60_000, 2 * 3600_000, 6 * 3600_000];

/** Activity failures no retry cures: the instruction waits LATE with this failure code. */
const PERMANENT_FAILURES: Record<string, string> = {
  [APP_NOT_INSTALLED]: 'app_not_installed',
  [APP_CREDENTIALS_UNREADABLE]: 'app_credentials_unreadable',
  [PROVIDER_REJECTED]: 'provider_rejected',
};

export async function paymentOrderWorkflow(input: PaymentOrderInput): Promise<OrderSnapshot> {
  const dunningDelaysMs = input.dunningDelaysMs ?? [...DEFAULT_DUNNING_DELAYS_MS];
  const snapshot: OrderSnapshot = {
    tenantId: input.tenantId,
    orderId: input.orderId,
    orderRef: input.orderRef,
    status: 'ACTIVE',
    version: '0',
    instructions: input.instructions.map((plan) => ({
      instructionRef: plan.instructionRef,
      status: 'PENDING',
      attempts: 0,
      appId: plan.appId,
      nextActionAt: plan.openAt,
    })),
  };
  setHandler(orderStateQuery, () => snapshot);
  // Results of PENDING payments, by provider reference: a repeated callback changes nothing.
  const providerResults = new Map<string, ProviderResult>();
  setHandler(providerResultSignal, (result) => {
    if (!providerResults.has(result.providerRef)) providerResults.set(result.providerRef, result);
  });

  let lastVersion = 0n;
  /**
   * Projection versions rise across runs, not just within one: they start from workflow time, which
   * a reset or a continued run only moves forward, so the read model never ignores a newer run.
   */
  function nextVersion(): string {
    const fromClock = BigInt(Date.now()) * 1000n;
    lastVersion = fromClock > lastVersion ? fromClock : lastVersion + 1n;
    return lastVersion.toString();
  }

  /** Records a change, tells operators what comes next, and projects the whole order to the read model. */
  async function publish(): Promise<void> {
    snapshot.version = nextVersion();
    const pending = snapshot.instructions
      .filter((i) => !isFinal(i.status) && i.nextActionAt)
      .map((i) => i.nextActionAt as string)
      .sort();
    upsertSearchAttributes([
      { key: OrderStatusKey, value: snapshot.status },
      { key: NextActionAtKey, value: pending.length > 0 ? new Date(pending[0]) : null },
    ]);
    // A copy: other branches may change the snapshot before this activation's commands are serialised.
    await projectOrderState(JSON.parse(JSON.stringify(snapshot)) as OrderSnapshot);
  }

  function transition(state: InstructionState, status: InstructionStatus, fields: Partial<InstructionState> = {}): void {
    if (!canTransition(state.status, status)) {
      // A bug, not a business outcome: failing the workflow task stops this order, visibly, until fixed code is deployed.
      throw new Error(`illegal transition of ${state.instructionRef}: ${state.status} -> ${status}`);
    }
    Object.assign(state, fields, { status });
    log.info('instruction state changed', {
      tenantId: input.tenantId,
      orderRef: input.orderRef,
      instructionRef: state.instructionRef,
      status,
    });
  }

  async function runInstruction(plan: PlannedInstruction, state: InstructionState): Promise<void> {
    await sleepUntil(plan.openAt);
    transition(state, 'OPEN', { openedAt: nowIso(), nextActionAt: plan.dueAt });
    await publish();

    await sleepUntil(plan.dueAt);
    if (!plan.financialInstrumentId) {
      // No instrument to collect from: the customer has to pay (or an instrument be added) first.
      transition(state, 'LATE', { lateAt: nowIso(), failureCode: 'no_financial_instrument', nextActionAt: undefined });
      await publish();
      await condition(() => plan.financialInstrumentId !== undefined);
    }
    // Declines are definite answers: each one uses up a dunning retry, and the next attempt gets a
    // new idempotency key. An unanswered call is not: it is repeated with the same key, without
    // limit, because the provider may have taken the money and must be asked again, never twice.
    let declines = 0;
    for (;;) {
      transition(state, 'PROCESSING', {
        processingAt: nowIso(),
        attempts: state.attempts + 1,
        appId: plan.appId,
        nextActionAt: undefined,
      });
      await publish();

      let outcome = await collect(plan, declines + 1);
      if (outcome.status === 'PENDING') outcome = await settlement(plan, state, outcome.providerRef);
      if (outcome.status === 'REJECTED') {
        // Nothing the provider or a retry can change: it waits for the tenant (an amend, a reinstall).
        transition(state, 'LATE', { lateAt: nowIso(), failureCode: outcome.code, nextActionAt: undefined });
        await publish();
        await condition(() => false);
      }
      if (outcome.status === 'SETTLED') {
        // Workflow time, not the provider's clock: the timeline of one order stays on one clock.
        transition(state, 'SETTLED', { settledAt: nowIso(), providerRef: outcome.providerRef, voucherCode: outcome.voucherCode, failureCode: undefined });
        await publish();
        return;
      }
      let retryInMs: number;
      if (outcome.status === 'DECLINED') {
        if (!outcome.retryable || declines >= dunningDelaysMs.length) {
          transition(state, 'FAILED', { failedAt: nowIso(), failureCode: outcome.code, providerRef: outcome.providerRef });
          await publish();
          return;
        }
        retryInMs = dunningDelaysMs[declines];
        declines += 1;
        state.providerRef = outcome.providerRef;
      } else {
        retryInMs = UNANSWERED_RETRY_MS;
      }
      const code = outcome.status === 'DECLINED' ? outcome.code : 'provider_unavailable';
      const retryAt = new Date(Date.now() + retryInMs).toISOString();
      transition(state, 'LATE', { lateAt: nowIso(), failureCode: code, nextActionAt: retryAt });
      await publish();
      await sleepUntil(retryAt);
    }
  }

  /** The final result of a PENDING payment: its callback, or else what the provider says when asked. */
  async function settlement(plan: PlannedInstruction, state: InstructionState, providerRef: string): Promise<ProviderResult | { status: 'REJECTED'; code: string }> {
    state.providerRef = providerRef;
    await publish();
    for (let poll = 0; ; poll++) {
      const delay = STATUS_POLL_DELAYS_MS[Math.min(poll, STATUS_POLL_DELAYS_MS.length - 1)];
      if (await condition(() => providerResults.has(providerRef), delay)) return providerResults.get(providerRef)!;
      try {
        const status = await getPaymentStatus({ appId: plan.appId, tenantId: input.tenantId, providerRef });
        if (status.status !== 'PENDING') return status;
      } catch (err) {
        const permanent = permanentFailure(err);
        if (permanent) return permanent;
        // Unanswered: ask again after the next wait.
      }
    }
  }

  async function collect(
    plan: PlannedInstruction,
    keyAttempt: number,
  ): Promise<PaymentOutcome | { status: 'UNREACHABLE' } | { status: 'REJECTED'; code: string }> {
    try {
      return await executePayment({
        appId: plan.appId,
        idempotencyKey: paymentIdempotencyKey(input.tenantId, input.orderRef, plan.instructionRef, keyAttempt),
        request: {
          tenantId: input.tenantId,
          orderRef: input.orderRef,
          instructionRef: plan.instructionRef,
          direction: plan.direction,
          amountMinor: plan.amountMinor,
          currency: plan.currency,
          country: plan.country,
          paymentMethod: plan.paymentMethod,
          financialInstrumentId: plan.financialInstrumentId as string,
        },
      });
    } catch (err) {
      const permanent = permanentFailure(err);
      if (permanent) return permanent;
      if (err instanceof ActivityFailure) {
        log.warn('payment provider unreachable after retries', { orderRef: input.orderRef, instructionRef: plan.instructionRef });
        return { status: 'UNREACHABLE' };
      }
      throw err;
    }
  }

  await publish();
  await Promise.all(input.instructions.map((plan, index) => runInstruction(plan, snapshot.instructions[index])));

  snapshot.status = orderStatusOf(snapshot.instructions);
  await publish();
  return snapshot;
}

/** An activity failure no retry cures, as the failure code the instruction waits LATE with. */
function permanentFailure(err: unknown): { status: 'REJECTED'; code: string } | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return undefined;
  const code = PERMANENT_FAILURES[err.cause.type ?? ''];
  if (!code) return undefined;
  const detail = err.cause.type === PROVIDER_REJECTED ? (err.cause.details?.[0] as string | undefined) : undefined;
  return { status: 'REJECTED', code: detail ? `${code}:${detail}`.slice(0, 64) : code };
}

function orderStatusOf(instructions: InstructionState[]): OrderStatus {
  return instructions.every((i) => i.status === 'CANCELLED') ? 'CANCELLED' : 'COMPLETED';
}

/** Workflow time: Date.now() inside a workflow is the deterministic workflow clock. */
function nowIso(): string {
  return new Date().toISOString();
}

async function sleepUntil(isoTime: string): Promise<void> {
  const ms = Date.parse(isoTime) - Date.now();
  if (ms > 0) await sleep(ms);
}
