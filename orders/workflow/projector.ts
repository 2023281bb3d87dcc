// The read model is projected by a loop of its own (ARCHITECTURE.md, "Temporal design"): it takes the
// instructions that changed since the last projection, with the events told meanwhile, and hands them
// to one activity. The instruction loops never wait for it: a database outage delays the read model,
// not a payment (a local write, below, holds its order's task for 6 s at most). A payment call under
// way is projected with its answer, in one write instead of two, so that in a burst of due payments
// the read model's writes do not queue ahead of the payments.
// Since the order-projects-locally start marker the write is a local activity: run by the worker
// within the workflow task that asked for it, it costs no trip through the server's queue and no
// second task, and its input (the changed instructions) is not kept in the history. A write the
// database does not take within LOCAL_WRITE's attempts is handed to the activity on the task queue,
// which retries it without limit and without growing the history, as every projection did before.
// Since order-projects-big-on-queue a projection of more than LOCAL_WRITE_MAX_INSTRUCTIONS goes
// there at once: its write takes seconds on a busy database and would hold the order's task.
import {
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  TemporalFailure,
} from '@temporalio/workflow';
import type { OrderActivities, OrderProjection } from '../contract/activities.js';
import type { ChangeAnswer } from '../contract/messages.js';
import type { OrderEntity } from './order-entity.js';
import { PATCHES_BEFORE_START } from './order-patches.js';

// The read model must catch up eventually, so projection retries without limit; it never blocks a payment.
const PROJECTING = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
} as const;
const queued = proxyActivities<OrderActivities>(PROJECTING);

/**
 * A local write's attempts before the projection goes to the task queue (a database outage lasts
 * longer): three, 6 s at most, so that a write asked for early in a task ends within the task's
 * 10 s timeout without heartbeats (more tasks and events in the history).
 */
const LOCAL_WRITE = {
  startToCloseTimeout: '5 seconds',
  scheduleToCloseTimeout: '6 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumAttempts: 3 },
} as const;
const local = proxyLocalActivities<OrderActivities>(LOCAL_WRITE);

/**
 * The most instructions a local write takes. Seen in `cost-growth` (2026-12-01): three orders of 500
 * card payments settling together, a projection of 500 instructions ran past a local attempt's 5 s,
 * holding its order's task past 5 s (TMPRL1104), and finished after sdk-core had given it up.
 */
export const LOCAL_WRITE_MAX_INSTRUCTIONS = 50;

/** How long an update waits for the read model to show its change before answering anyway. */
const PROJECTION_WAIT_MS = 5_000;

/** How long the read model waits for a payment call's answer before it shows the call under way. */
const CALL_ANSWER_WAIT_MS = 10_000;

const CALL_WAIT_SUMMARY = { summary: 'project with the payment answers' };

export class Projector {
  private projecting = false;
  private projectedVersion: bigint;
  /** Updates waiting for the read model to show their change: nothing is held back for a call then. */
  private answersAwaited = 0;

  constructor(
    private readonly order: OrderEntity,
    private readonly paymentCallsUnderWay: () => number,
  ) {
    this.projectedVersion = BigInt(order.state.lastVersion);
  }

  /** Nothing is left to project and no projection is under way. */
  idle(): boolean {
    return !this.hasChanges() && !this.projecting;
  }

  /** An update's answer, once the read model shows its change (or after a few seconds, if it is slow). */
  async answer(): Promise<ChangeAnswer> {
    const version = BigInt(this.order.state.lastVersion) + 1n;
    return this.answerWhen(() => this.projectedVersion >= version);
  }

  /** The answer to a change an earlier run took (its update retried): once the read model has all there is. */
  answerAgain(): Promise<ChangeAnswer> {
    return this.answerWhen(() => this.idle());
  }

  private async answerWhen(shown: () => boolean): Promise<ChangeAnswer> {
    this.answersAwaited += 1;
    try {
      return { projected: await condition(shown, PROJECTION_WAIT_MS) };
    } finally {
      this.answersAwaited -= 1;
    }
  }

  /**
   * The projector waits for the payment calls under way (at most CALL_ANSWER_WAIT_MS), or is about
   * to in this activation, before it projects what changed. Not while a projection is in flight,
   * which a database outage can hold for as long as it lasts.
   */
  waitsForAnswers(): boolean {
    return !this.projecting && this.hasChanges() && this.waitsForCalls();
  }

  async run(): Promise<void> {
    const { state } = this.order;
    for (;;) {
      await condition(() => this.hasChanges());
      // Not awaited when there is nothing to wait for: commands keep the order older histories have.
      if (this.waitsForCalls()) await condition(() => !this.waitsForCalls(), CALL_ANSWER_WAIT_MS, CALL_WAIT_SUMMARY);
      const refs = state.dirty.splice(0);
      const refunds = this.order.takeDirtyRefunds();
      const events = state.events.splice(0);
      state.orderDirty = false;
      const metadata = Object.fromEntries(
        refs.filter((ref) => state.pendingMetadata[ref]).map((ref) => [ref, state.pendingMetadata[ref]]),
      );
      const version = this.nextVersion();
      this.projecting = true;
      await this.write(`project ${refs.length} instruction(s)`, {
        tenantId: state.tenantId,
        orderId: state.orderId,
        orderRef: state.orderRef,
        version: version.toString(),
        status: state.status,
        openUntil: this.order.openUntil(),
        instructions: refs.map((ref) => ({
          ...this.order.instructionOf(this.order.instruction(ref)),
          metadata: metadata[ref],
        })),
        events,
        ...(refunds.length > 0 ? { refunds } : {}),
      });
      for (const ref of Object.keys(metadata)) {
        if (state.pendingMetadata[ref] === metadata[ref]) delete state.pendingMetadata[ref];
      }
      this.projecting = false;
      this.projectedVersion = version;
    }
  }

  /**
   * One projection written, whichever way; a repeated write changes nothing twice (versions, event
   * keys). Not an async function: a run from before the local write awaits the activity's own
   * promise, as it did, so that its commands keep the order of its history.
   */
  private write(summary: string, projection: OrderProjection): Promise<void> {
    const onQueue = () => queued.projectOrder.executeWithOptions({ ...PROJECTING, summary }, [projection]);
    const { patches } = this.order;
    if (!patches.projectsLocally) return onQueue();
    if (patches.queuesBigProjections && projection.instructions.length > LOCAL_WRITE_MAX_INSTRUCTIONS) return onQueue();
    return local.projectOrder.executeWithOptions({ ...LOCAL_WRITE, summary }, [projection]).catch((err: unknown) => {
      // A local activity's own failure comes unwrapped (an ApplicationFailure), a timeout as an ActivityFailure.
      if (!(err instanceof TemporalFailure) || isCancellation(err)) throw err;
      return onQueue();
    });
  }

  private hasChanges(): boolean {
    const { state } = this.order;
    return state.dirty.length > 0 || state.dirtyRefunds!.length > 0 || state.orderDirty || state.events.length > 0;
  }

  /** Payment calls are under way and no update waits for the read model: the projection may wait for their answers. */
  private waitsForCalls(): boolean {
    return (
      this.paymentCallsUnderWay() > 0 &&
      this.answersAwaited === 0 &&
      this.order.patches.has(PATCHES_BEFORE_START.PROJECT_WITH_ANSWERS)
    );
  }

  private nextVersion(): bigint {
    // From workflow time, which a reset or a continued run only moves forward: versions rise across runs.
    const { state } = this.order;
    const fromClock = BigInt(Date.now()) * 1000n;
    const last = BigInt(state.lastVersion);
    const version = fromClock > last ? fromClock : last + 1n;
    state.lastVersion = version.toString();
    return version;
  }
}
