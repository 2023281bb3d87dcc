// One loop per instruction over the pure state machine (ARCHITECTURE.md, "Temporal design"): it asks
// decide() what to do next and, to wait, calls condition(changed, until), so any change re-plans the
// timer at once. Provider calls are activities with explicit retry policies; what no retry cures
// comes back as a failure code, never as an exception out of the loop.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  APP_CREDENTIALS_UNREADABLE,
  APP_NOT_INSTALLED,
  OUTCOME_UNKNOWN,
  PROVIDER_CALL_PUT_OFF,
  PROVIDER_REJECTED,
  type OrderActivities,
} from '../contract/activities.js';
import { paymentIdempotencyKey, refundIdempotencyKey, TENANT_HOSTED_APPS, tenantHostedQueue } from '../contract/ids.js';
import { providerRequestOf } from '../contract/instruction-codec.js';
import type { StatedAmount } from '../../domain/payment-outcome.js';
import {
  applyExpiry,
  applyResult,
  decide,
  startCall,
  stillPending,
  transition,
  type CallResult,
  type InstructionMachine,
} from './instruction-machine.js';
import { nowIso, type OrderEntity } from './order-entity.js';
import {
  CALL_AGAIN_WHEN_PUT_OFF,
  CALLBACK_BEATS_MISMATCHED_ANSWER,
  MONEY_MOVED_BEATS_NOT_MOVED,
  PATCHES_BEFORE_START,
  RETURN_WHILE_ASKED_KEPT,
  UNKNOWN_ASKED_ON_CALLBACK,
} from './order-patches.js';
import { MAX_PUT_OFFS, putOffWaitMs } from './provider-waits.js';
import { decideRefund, refundAppOf, type RefundCallResult, type RefundMachine } from './refund-machine.js';

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
const { getPaymentStatus, lookupPayment, getRefundStatus } = proxyActivities<OrderActivities>(ASKING);

// A refund call is bounded like a payment's: unanswered after these, it is asked again an hour later, same key.
const REFUND_CALL = PAYMENT_CALL;
const { executeRefund } = proxyActivities<OrderActivities>(REFUND_CALL);

/** Activity failures no retry cures: the instruction waits LATE with this failure code until a change. */
const PERMANENT_FAILURES: Record<string, string> = {
  [APP_NOT_INSTALLED]: 'app_not_installed',
  [APP_CREDENTIALS_UNREADABLE]: 'app_credentials_unreadable',
  [PROVIDER_REJECTED]: 'provider_rejected',
};

export class InstructionLoops {
  private readonly loops = new Set<Promise<void>>();
  /** What has a loop running (instruction refs, refund ids): never two loops for one. */
  private readonly running = new Set<string>();
  /** Continuing as new: every loop stops at its next wait, and no new one starts. */
  private stopping = false;
  /** Payment calls sent and not yet answered. */
  private calls = 0;

  constructor(private readonly order: OrderEntity) {}

  /** Runs the instruction's loop, and one for each refund of it under way. */
  start(machine: InstructionMachine): void {
    this.spawn(`instruction:${machine.plan.instructionRef}`, () => this.run(machine));
    for (const refund of machine.refunds) this.startRefund(machine, refund);
  }

  startRefund(machine: InstructionMachine, refund: RefundMachine): void {
    if (refund.status !== 'PENDING') return;
    this.spawn(`refund:${refund.refundId}`, () => this.runRefund(machine, refund));
  }

  private spawn(name: string, body: () => Promise<void>): void {
    if (this.stopping || this.running.has(name)) return;
    this.running.add(name);
    const loop = body().finally(() => {
      this.loops.delete(loop);
      this.running.delete(name);
    });
    this.loops.add(loop);
  }

  /** Payment calls sent to providers and not yet answered (or given up on). */
  paymentCallsUnderWay(): number {
    return this.calls;
  }

  /** Resolves once every loop has reached a wait and stopped there: no call is in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await condition(() => this.loops.size === 0);
  }

  private async run(machine: InstructionMachine): Promise<void> {
    const { order } = this;
    for (;;) {
      const step = decide(machine, Date.now(), order.arrearsExpiryMs());
      switch (step.kind) {
        case 'done':
          return;
        case 'expire':
          applyExpiry(machine, nowIso());
          log.info('arrears expired', order.logFields(machine));
          order.changed(machine);
          break;
        case 'open':
          transition(machine, 'OPEN', nowIso());
          order.changed(machine);
          break;
        case 'late':
          transition(machine, 'LATE', nowIso());
          machine.failureCode = step.code;
          order.changed(machine);
          break;
        case 'notify':
          order.notify(machine);
          break;
        case 'call':
          await this.call(machine);
          break;
        case 'settle': {
          const reversal = machine.pending?.reversal;
          this.apply(machine, step.result);
          order.changed(machine);
          // A reversal that came with its settlement: taken now that the payment is settled.
          if (reversal) order.takeResult(reversal);
          break;
        }
        case 'ask':
          await this.ask(machine, step.providerRef);
          break;
        case 'wait': {
          if (this.stopping) return;
          const revision = machine.revision;
          const woken = () => machine.revision !== revision || this.stopping;
          const summary = `${machine.plan.instructionRef} ${step.why}`;
          if (step.until === undefined) await condition(woken);
          else await condition(woken, Math.max(1, Date.parse(step.until) - Date.now()), { summary });
          break;
        }
      }
    }
  }

  private apply(machine: InstructionMachine, result: CallResult): void {
    const { order } = this;
    const returned = machine.status !== 'RETURNED' && result.status === 'RETURNED';
    applyResult(machine, result, Date.now(), order.policy(), order.resultOptions(machine, result));
    if (returned) order.toldReturn(machine);
  }

  private async runRefund(machine: InstructionMachine, refund: RefundMachine): Promise<void> {
    const { order } = this;
    for (;;) {
      const step = decideRefund(refund, Date.now());
      switch (step.kind) {
        case 'done':
          return;
        case 'finish':
          order.applyRefund(machine, refund, step.result);
          break;
        case 'call':
          order.applyRefund(machine, refund, await this.callRefund(machine, refund));
          order.takeEarlyRefundResults(machine, refund);
          break;
        case 'ask':
          await this.askRefund(machine, refund, step.providerRef);
          break;
        case 'wait': {
          if (this.stopping) return;
          const revision = refund.revision;
          const woken = () => refund.revision !== revision || this.stopping;
          const summary = `refund ${refund.number} of ${machine.plan.instructionRef} ${step.why}`;
          if (step.until === undefined) await condition(woken);
          else await condition(woken, Math.max(1, Date.parse(step.until) - Date.now()), { summary });
          break;
        }
      }
    }
  }

  private async callRefund(machine: InstructionMachine, refund: RefundMachine): Promise<RefundCallResult> {
    const { tenantId, orderRef } = this.order.state;
    const { plan } = machine;
    const keyMayHaveReached = refund.attempts > 0;
    refund.attempts += 1;
    refund.calling = true;
    const idempotencyKey = refundIdempotencyKey(tenantId, orderRef, plan.instructionRef, refund.number);
    const appId = refundAppOf(refund, plan.appId);
    try {
      return await this.unlessPutOff(
        (reached) =>
          executeRefund.executeWithOptions(
            {
              ...REFUND_CALL,
              ...this.queueOf(appId),
              summary: `refund ${refund.number} of ${plan.instructionRef} via ${appId}`,
            },
            [
              {
                appId,
                idempotencyKey,
                request: {
                  tenantId,
                  orderRef,
                  instructionRef: plan.instructionRef,
                  paymentRef: refund.paymentRef,
                  amountMinor: refund.amountMinor,
                  currency: refund.currency,
                  ...(refund.reason ? { reason: refund.reason } : {}),
                },
                ...(reached ? { keyMayHaveReached: reached } : {}),
              },
            ],
          ),
        keyMayHaveReached,
      );
    } catch (err) {
      return this.failureOf(err, machine);
    } finally {
      refund.calling = false;
    }
  }

  private async askRefund(machine: InstructionMachine, refund: RefundMachine, providerRef: string): Promise<void> {
    const appId = refundAppOf(refund, machine.plan.appId);
    const fields = { ...this.order.logFields(machine), refundNumber: refund.number };
    refund.calling = true;
    try {
      const status = await this.unlessPutOff(() =>
        getRefundStatus.executeWithOptions(
          {
            ...ASKING,
            ...this.queueOf(appId),
            summary: `ask about refund ${refund.number} of ${machine.plan.instructionRef}`,
          },
          [{ appId, tenantId: this.order.state.tenantId, providerRef, asked: askedOf(refund) }],
        ),
      );
      if (status.status === 'PENDING') stillPending(refund, Date.now());
      // Else the callback ends it, at the loop's next step.
      else if (!callbackEnds(refund.pending, status, fields)) this.order.applyRefund(machine, refund, status);
    } catch (err) {
      if (applicationFailureOf(err)?.type === OUTCOME_UNKNOWN && !callbackEnds(refund.pending, OTHER_MONEY, fields)) {
        // Refunded other money than asked: as for a payment (ask), no longer pending but unknown.
        refund.pending = undefined;
        this.order.applyRefund(machine, refund, this.failureOf(err, machine));
      } else {
        stillPending(refund, Date.now(), refusedToSay(err, refund.pending, fields));
      }
    } finally {
      refund.calling = false;
    }
    this.order.refundChanged(machine, refund);
  }

  private async call(machine: InstructionMachine): Promise<void> {
    const askFirst = machine.unanswered;
    startCall(machine, nowIso());
    this.order.changed(machine);
    const { tenantId, orderRef } = this.order.state;
    const idempotencyKey = paymentIdempotencyKey(tenantId, orderRef, machine.plan.instructionRef, machine.keyAttempt);
    let result: CallResult | undefined;
    this.calls += 1;
    try {
      if (askFirst) {
        // The last call with this key went unanswered: the provider may have the payment already.
        result = await this.lookup(machine, idempotencyKey);
      }
      result ??= await this.execute(machine, idempotencyKey, askFirst);
    } finally {
      this.calls -= 1;
    }
    this.apply(machine, result);
    this.order.changed(machine);
    this.order.takeEarlyResults(machine);
    this.order.takeReturnsOfUnknown(machine);
  }

  /** `keyMayHaveReached`: an earlier call under this key went unanswered, so a refusal now leaves its outcome unknown. */
  private async execute(
    machine: InstructionMachine,
    idempotencyKey: string,
    keyMayHaveReached: boolean,
  ): Promise<CallResult> {
    const { plan } = machine;
    const verb = plan.direction === 'DEBIT' ? 'collect' : 'pay out';
    try {
      return await this.unlessPutOff(
        (reached) =>
          executePayment.executeWithOptions(
            {
              ...PAYMENT_CALL,
              ...this.queueOf(plan.appId),
              summary: `${verb} ${plan.instructionRef} via ${plan.appId} (${keyAttempt(idempotencyKey)})`,
            },
            [
              {
                appId: plan.appId,
                idempotencyKey,
                request: providerRequestOf(this.order.state, plan),
                ...(reached ? { keyMayHaveReached: reached } : {}),
              },
            ],
          ),
        keyMayHaveReached,
      );
    } catch (err) {
      return this.failureOf(err, machine);
    }
  }

  /** What the provider knows of the key: its payment, or undefined when it has none (the call never reached it). */
  private async lookup(machine: InstructionMachine, idempotencyKey: string): Promise<CallResult | undefined> {
    try {
      const found = await this.unlessPutOff(() =>
        lookupPayment.executeWithOptions(
          {
            ...ASKING,
            ...this.queueOf(machine.plan.appId),
            summary: `ask about ${machine.plan.instructionRef} (${keyAttempt(idempotencyKey)})`,
          },
          [
            {
              appId: machine.plan.appId,
              tenantId: this.order.state.tenantId,
              idempotencyKey,
              asked: askedOf(machine.plan),
            },
          ],
        ),
      );
      return found ?? undefined;
    } catch (err) {
      return this.failureOf(err, machine);
    }
  }

  private async ask(machine: InstructionMachine, providerRef: string): Promise<void> {
    const fields = this.order.logFields(machine);
    if (machine.pending) machine.pending.asking = true;
    try {
      const status = await this.unlessPutOff(() =>
        getPaymentStatus.executeWithOptions(
          {
            ...ASKING,
            ...this.queueOf(machine.plan.appId),
            summary: `ask about ${machine.plan.instructionRef} (${providerRef})`,
          },
          [
            {
              appId: machine.plan.appId,
              tenantId: this.order.state.tenantId,
              providerRef,
              asked: askedOf(machine.plan),
            },
          ],
        ),
      );
      if (status.status === 'PENDING') stillPending(machine, Date.now());
      // Else the callback settles it, at the loop's next step.
      else if (!callbackEnds(machine.pending, status, fields)) this.apply(machine, status);
    } catch (err) {
      if (applicationFailureOf(err)?.type === OUTCOME_UNKNOWN && !callbackEnds(machine.pending, OTHER_MONEY, fields)) {
        // Settled with other money than asked: no longer waited for as pending, but unknown, its key
        // kept and asked about, until the provider says it right or a tenant admin resolves it.
        machine.pending = undefined;
        this.apply(machine, this.failureOf(err, machine));
      } else {
        // Unanswered, or refused for good: the callback may still come; ask again later.
        stillPending(machine, Date.now(), refusedToSay(err, machine.pending, fields));
      }
    } finally {
      if (machine.pending) machine.pending.asking = undefined;
    }
    this.order.changed(machine);
  }

  /**
   * Runs a provider call's activity again while its worker puts it off (PROVIDER_CALL_PUT_OFF: the
   * tenant's account has its share of calls to tenant-hosted providers under way). Nothing was sent,
   * so it takes none of the call's tries, and its key stands as it was, unless the put-off says an
   * earlier attempt of that activity may have reached the provider under it: the calls after it are
   * told (`keyMayHaveReached`), so that a refusal then leaves the outcome unknown.
   */
  private async unlessPutOff<T>(
    run: (keyMayHaveReached: boolean) => Promise<T>,
    keyMayHaveReached = false,
  ): Promise<T> {
    for (let putOffs = 0; ; putOffs++) {
      try {
        return await run(keyMayHaveReached);
      } catch (err) {
        // Put off too often, it ends as a call unanswered would (its key kept, asked about later): a
        // call waiting on others' calls holds its order's continue-as-new and projections meanwhile.
        const failure = applicationFailureOf(err);
        if (failure?.type !== PROVIDER_CALL_PUT_OFF || !patched(CALL_AGAIN_WHEN_PUT_OFF)) throw err;
        if (putOffs >= MAX_PUT_OFFS) {
          // Said apart from the provider's own silence, which the failure code that follows reads as.
          log.warn('a provider call was put off too often: ended as unanswered, its key kept', {
            tenantId: this.order.state.tenantId,
            orderRef: this.order.state.orderRef,
            putOffs,
          });
          throw err;
        }
        keyMayHaveReached ||= failure.details?.[0] === true;
        // The workflow's own randomness (uuid4 is seeded per run, the same on replay) spreads the waits.
        await sleep(putOffWaitMs(putOffs, parseInt(uuid4().slice(0, 8), 16) / 2 ** 32));
      }
    }
  }

  /** The task queue of a call to `appId`'s provider: its own for providers tenants run, else the order's. */
  private queueOf(appId: string): { taskQueue?: string } {
    if (!TENANT_HOSTED_APPS.includes(appId) || !this.order.patches.has(PATCHES_BEFORE_START.TENANT_HOSTED_QUEUE))
      return {};
    return { taskQueue: tenantHostedQueue(workflowInfo().taskQueue) };
  }

  /** A call's failure as an outcome: unknown, refused for good, or unanswered (anything else is thrown on). */
  private failureOf(
    err: unknown,
    machine: InstructionMachine,
  ): Extract<CallResult, { status: 'UNKNOWN' | 'REJECTED' | 'UNANSWERED' }> {
    const failure = applicationFailureOf(err);
    if (failure) {
      if (failure.type === OUTCOME_UNKNOWN) {
        const refusal = (failure.details?.[0] as string | undefined) ?? 'refused';
        log.warn('payment outcome unknown: the provider refused a key that may have paid', {
          ...this.order.logFields(machine),
          refusal,
        });
        // The reference the provider stated for what it says it did (activities since the patch).
        const stated = failure.details?.[1];
        return typeof stated === 'string' && patched(UNKNOWN_ASKED_ON_CALLBACK)
          ? { status: 'UNKNOWN', code: refusal, providerRef: stated }
          : { status: 'UNKNOWN', code: refusal };
      }
      const code = refusalCodeOf(failure);
      if (code) return { status: 'REJECTED', code };
    }
    if (err instanceof ActivityFailure) {
      log.warn('provider unanswered after retries', this.order.logFields(machine));
      return { status: 'UNANSWERED' };
    }
    throw err;
  }
}

/** The key's attempt number, for the activity's summary in the UI. */
function keyAttempt(idempotencyKey: string): string | undefined {
  return idempotencyKey.split(':').at(-1);
}

/** The activity's own failure, when an activity failed with one (a refusal of a type the loops branch on). */
function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
}

/** The code of a refusal no retry cures (the app uninstalled, its credentials unreadable, the provider refusing), if it is one. */
function refusalCodeOf(failure: ApplicationFailure | undefined): string | undefined {
  const code = PERMANENT_FAILURES[failure?.type ?? ''];
  if (!code) return undefined;
  const detail = failure?.type === PROVIDER_REJECTED ? (failure.details?.[0] as string | undefined) : undefined;
  return (detail ? `${code}:${detail}` : code).slice(0, 64);
}

/**
 * Why the provider refused for good to say how a PENDING payment (or refund) ended, when its status
 * poll failed so; after an unanswered poll, the refusal before it. It stays PENDING, its callback
 * still ending it, but a tenant admin may resolve it: the callback may never come.
 */
function refusedToSay(
  err: unknown,
  pending: { refused?: string } | undefined,
  fields: Record<string, unknown>,
): string | undefined {
  const refusal = refusalCodeOf(applicationFailureOf(err));
  if (refusal === undefined) return pending?.refused;
  if (pending?.refused === undefined)
    log.warn('the provider refuses to say how a pending payment (or refund) ended: a tenant admin may resolve it', {
      ...fields,
      refusal,
    });
  return refusal;
}

/** A status answer stating other money than asked: money moved, but not what was asked. */
const OTHER_MONEY = { status: 'OTHER_MONEY' } as const;

/** Whether a provider's result says money moved: a payment settled (if taken back since), a refund made, other money. */
function movedMoney({ status }: { status: string }): boolean {
  return status === 'SETTLED' || status === 'RETURNED' || status === 'SUCCEEDED' || status === OTHER_MONEY.status;
}

/**
 * Whether the callback that came while the provider was asked about a payment (or refund) ends it,
 * rather than the answer. Agreeing, the answer ends it, unless it stated other money: the callback's
 * money was checked at the door. Disagreeing on whether money moved, money moved wins, as a second
 * payment (or refund) would go under a new key: a callback saying it moved ends it; an answer of other
 * money against a callback saying none moved leaves the outcome unknown, its key kept.
 */
function callbackEnds(
  pending: { result?: { status: string }; reversal?: unknown } | undefined,
  answer: { status: string },
  fields: Record<string, unknown>,
): boolean {
  const callback = pending?.result;
  if (callback === undefined) return false;
  if (answer === OTHER_MONEY && !patched(CALLBACK_BEATS_MISMATCHED_ANSWER)) return false;
  if (movedMoney(callback) === movedMoney(answer)) {
    // Settled, and taken back since: the callback (or the return kept with it) says both, the answer
    // only the first. Its step settles it and then takes the return.
    const returned = callback.status === 'RETURNED' || pending?.reversal !== undefined;
    if (answer !== OTHER_MONEY && returned && patched(RETURN_WHILE_ASKED_KEPT)) return true;
    return answer === OTHER_MONEY;
  }
  log.warn('the provider called back contrary to its answer on whether money moved: the one saying it moved is taken', {
    ...fields,
    callback: callback.status,
    answer: answer.status,
  });
  // An answer that it moved, the money asked, ended it before the patch too: no marker for it.
  if (answer !== OTHER_MONEY && movedMoney(answer)) return false;
  if (!patched(MONEY_MOVED_BEATS_NOT_MOVED)) return answer === OTHER_MONEY;
  return movedMoney(callback);
}

/**
 * The money a payment (its instruction's plan) or a refund asks for, which the provider's settlement
 * or success must state if it states any.
 */
function askedOf({ amountMinor, currency }: StatedAmount): StatedAmount {
  return { amountMinor, currency };
}
