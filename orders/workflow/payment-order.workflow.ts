// One payment order (ARCHITECTURE.md, "Temporal design"): the wiring of its parts to Temporal. The
// order's state and what each message does to it live in OrderEntity; every instruction runs its
// own loop (InstructionLoops); the read model and the operators' view are kept by loops of their
// own. All state is one serialisable object, carried by continue-as-new in any state.
import { allHandlersFinished, condition, continueAsNew, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { UpdateDefinition } from '@temporalio/common';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
  createRefundUpdate,
  orderStateQuery,
  payInstructionUpdate,
  providerResultSignal,
  replacedSecretReturnUpdate,
  type SignalledResult,
  refundResultSignal,
  mandateChangedSignal,
  resolveInstructionUpdate,
  resolveRefundUpdate,
  retryInstructionUpdate,
  type ChangeAnswer,
  type OrderView,
  type PaymentOrderInput,
} from '../contract/messages.js';
import { packState, unpackState, type ContinuedState } from './continued-state.js';
import { InstructionLoops } from './instruction-loops.js';
import { OperatorView } from './operator-view.js';
import { OrderEntity, type OrderState } from './order-entity.js';
import { OrderPatches } from './order-patches.js';
import { Projector } from './projector.js';
import { TakenUpdates } from './taken-updates.js';

export type { OrderState };

export interface PaymentOrderWorkflowInput extends PaymentOrderInput {
  /** Set by continue-as-new: the state to resume from (instructions is then empty); packed since continued-state.ts. */
  continued?: ContinuedState | OrderState;
  /** Continue as new after this many history events (default 4,000; tests set less). */
  continueAsNewAfterEvents?: number;
}

const CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;

export async function paymentOrderWorkflow(input: PaymentOrderWorkflowInput): Promise<OrderView> {
  const patches = new OrderPatches();
  const state = input.continued ? unpackState(input.continued) : OrderEntity.initialState(input);
  // Reads the order and the projector only once running, after they are built just below.
  const operatorView = new OperatorView(
    state,
    (machine) => order.nextActionOf(machine),
    patches,
    () => projector.waitsForAnswers(),
  );
  const order = new OrderEntity(state, () => operatorView.markStale(), patches);
  const loops = new InstructionLoops(order);
  const projector = new Projector(order, () => loops.paymentCallsUnderWay());

  setHandler(orderStateQuery, () => order.view());
  const takeResult = (result: SignalledResult) => {
    const returned = order.takeResult(result);
    if (!returned) return;
    loops.start(returned);
    order.movedAgain();
  };
  setHandler(providerResultSignal, takeResult);
  setHandler(replacedSecretReturnUpdate, takeResult, {
    validator: (result: SignalledResult) => {
      if (result.status !== 'RETURNED' || result.underReplacedSecret !== true)
        throw new Error('only a return taken under a replaced callback secret comes by this update');
    },
  });
  setHandler(refundResultSignal, (result) => order.takeRefundResult(result));
  setHandler(mandateChangedSignal, (change) => order.mandateChanged(change));
  const taken = new TakenUpdates(state);
  /**
   * A change: refused by its validator, or made once and answered when the read model shows it. An
   * update an earlier run took, retried, is answered again without its validator or its change.
   */
  function onChange<Args extends unknown[]>(
    update: UpdateDefinition<ChangeAnswer, Args>,
    validate: (...args: Args) => void,
    make: (...args: Args) => void,
  ): void {
    setHandler(
      update,
      async (...args: Args) => {
        if (taken.isRepeat()) return projector.answerAgain();
        make(...args);
        taken.remember();
        return projector.answer();
      },
      {
        validator: (...args: Args) => {
          if (!taken.isRepeat()) validate(...args);
        },
      },
    );
  }
  onChange(
    cancelOrderUpdate,
    () => order.validateCancelOrder(),
    () => order.cancelOrder(),
  );
  onChange(
    cancelInstructionUpdate,
    (change) => order.validateCancelInstruction(change),
    (change) => order.cancelInstruction(change),
  );
  onChange(
    amendInstructionUpdate,
    (change) => order.validateAmendment(change),
    (change) => order.amend(change),
  );
  onChange(
    addInstructionUpdate,
    (change) => order.validateAddition(change),
    (change) => loops.start(order.add(change)),
  );
  onChange(
    resolveInstructionUpdate,
    (change) => order.validateResolution(change),
    (change) => order.resolve(change),
  );
  onChange(
    createRefundUpdate,
    (change) => order.validateRefund(change),
    (change) => {
      const { machine, refund } = order.createRefund(change);
      loops.startRefund(machine, refund);
    },
  );
  onChange(
    resolveRefundUpdate,
    (change) => order.validateRefundResolution(change),
    (change) => order.resolveRefund(change),
  );
  onChange(
    retryInstructionUpdate,
    (change) => order.validateRetry(change),
    (change) => {
      loops.start(order.retry(change));
      order.movedAgain();
    },
  );
  onChange(
    payInstructionUpdate,
    (change) => order.validatePayment(change),
    (change) => order.pay(change),
  );

  order.tellOrder('order.created');
  for (const machine of state.instructions) loops.start(machine);
  void projector.run();
  void operatorView.run();

  const historyLimit = input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS;
  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
  let ended = false;
  for (;;) {
    await condition(() => order.quiet() || historyIsLong());
    if (!order.quiet()) break;
    order.finish();
    // Ended; it stays open while a refund, a return or a retry may still come for it.
    const until = order.staysOpenUntil();
    if (until === undefined || until <= Date.now()) {
      // From here no refund, retry or return is taken: what was taken before has run to its end.
      order.close();
      ended = true;
      break;
    }
    await condition(() => !order.quiet() || order.outcomeChanged() || historyIsLong(), until - Date.now(), {
      summary: 'the order stays open for refunds and returns',
    });
    if (!order.allAtRest()) order.reopen();
    if (historyIsLong()) break;
  }

  if (!ended) await loops.stop();
  // Nothing is left unsaid: the read model has every change, and every update has answered.
  await condition(() => projector.idle() && operatorView.upToDate() && allHandlersFinished());
  if (!ended) {
    log.info('continuing as new', {
      tenantId: state.tenantId,
      orderRef: state.orderRef,
      events: workflowInfo().historyLength,
    });
    await continueAsNew<typeof paymentOrderWorkflow>({ ...input, instructions: [], continued: packState(state) });
  }
  return order.view();
}
