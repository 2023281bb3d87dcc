import type { OrderStatus } from '../../domain/instruction-status.js';
import type { RefusalKind } from '../../domain/refusal.js';

/**
 * Failure types of refused updates: the order's workflow throws them from its validators, with a
 * message that says why, and the order service turns them into Refusals.
 */
export const CHANGE_REFUSALS = {
  notFound: 'InstructionNotFound',
  notChangeable: 'InstructionNotChangeable',
  notRefundable: 'InstructionNotRefundable',
  orderNotActive: 'OrderNotActive',
  duplicate: 'InstructionExists',
  tooMany: 'TooManyInstructions',
  invalid: 'ChangeInvalid',
  refundTooLarge: 'RefundTooLarge',
  tooManyRefunds: 'TooManyRefunds',
  refundNotFound: 'RefundNotFound',
  refundNotChangeable: 'RefundNotChangeable',
  amountChanged: 'AmountChanged',
} as const;

/** How each refused update is told to the caller. */
export const REFUSAL_OF_CHANGE: Record<string, { kind: RefusalKind; code: string }> = {
  [CHANGE_REFUSALS.notFound]: { kind: 'not_found', code: 'instruction_not_found' },
  [CHANGE_REFUSALS.notChangeable]: { kind: 'conflict', code: 'instruction_not_changeable' },
  // The API checks this first too (order-service.ts); the workflow's word is final when the two race.
  [CHANGE_REFUSALS.notRefundable]: { kind: 'conflict', code: 'instruction_not_refundable' },
  [CHANGE_REFUSALS.orderNotActive]: { kind: 'conflict', code: 'order_not_active' },
  [CHANGE_REFUSALS.duplicate]: { kind: 'conflict', code: 'instruction_exists' },
  [CHANGE_REFUSALS.tooMany]: { kind: 'conflict', code: 'too_many_instructions' },
  [CHANGE_REFUSALS.invalid]: { kind: 'invalid', code: 'validation_failed' },
  [CHANGE_REFUSALS.refundTooLarge]: { kind: 'conflict', code: 'refund_exceeds_refundable' },
  [CHANGE_REFUSALS.tooManyRefunds]: { kind: 'conflict', code: 'too_many_refunds' },
  [CHANGE_REFUSALS.refundNotFound]: { kind: 'not_found', code: 'refund_not_found' },
  [CHANGE_REFUSALS.refundNotChangeable]: { kind: 'conflict', code: 'refund_not_changeable' },
  [CHANGE_REFUSALS.amountChanged]: { kind: 'conflict', code: 'amount_changed' },
};

/**
 * A change its order's workflow took and was stopped before answering (an operator terminated it):
 * unlike `order_workflow_closed`, the change was made, may or may not show in the order (a
 * projection under way may still write it), and a payment or refund it started may have been sent.
 */
export const CLOSED_DURING_CHANGE = 'order_workflow_closed_during_change';

/** Why a change to an ended order is refused, and what to do instead. */
export function orderEndedMessage(status: OrderStatus): string {
  const instead = {
    ACTIVE: '',
    COMPLETED: '; refund a settled instruction with POST …/refunds, or create a new order for new payments',
    COMPLETED_WITH_FAILURES:
      '; retry a FAILED instruction with POST …/retry, refund a settled one with POST …/refunds, or create a new order',
    CANCELLED: '; create a new order for new payments',
  }[status];
  return `the order is ${status}${instead}`;
}
