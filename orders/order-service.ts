import type { EntityManager } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import { orderWorkflowId } from '../domain/order.js';
import { CHANGE_REFUSALS } from './contract/messages.js';
import { ApiError } from '../api/http/problem.js';

/** How long the API waits for a running order to take a change. */
const UPDATE_DEADLINE_MS = 15_000;

const REFUSAL_ANSWERS: Record<string, { status: number; code: string }> = {
  [CHANGE_REFUSALS.notFound]: { status: 404, code: 'instruction_not_found' },
  [CHANGE_REFUSALS.notChangeable]: { status: 409, code: 'instruction_not_changeable' },
  [CHANGE_REFUSALS.orderNotActive]: { status: 409, code: 'order_not_active' },
  [CHANGE_REFUSALS.duplicate]: { status: 409, code: 'instruction_exists' },
  [CHANGE_REFUSALS.tooMany]: { status: 409, code: 'too_many_instructions' },
  [CHANGE_REFUSALS.invalid]: { status: 400, code: 'validation_failed' },
};

export async function findOrder(em: EntityManager, tenantId: string, orderRef: string): Promise<PaymentOrder> {
  const order = await em.findOne(PaymentOrder, { tenantId, orderRef });
  if (!order) throw new ApiError(404, 'order_not_found', `no order ${orderRef}`);
  return order;
}

export async function findInstruction(
  em: EntityManager,
  order: PaymentOrder,
  instructionRef: string,
): Promise<PaymentInstruction> {
  const instruction = await em.findOne(PaymentInstruction, {
    order: order.id,
    tenantId: order.tenantId,
    instructionRef,
  });
  if (!instruction)
    throw new ApiError(404, 'instruction_not_found', `order ${order.orderRef} has no instruction ${instructionRef}`);
  return instruction;
}

/**
 * Sends a change to the order's workflow as an update; a refusal is answered with its reason, an
 * order not running as it stands. `updateId` makes a retried change the same update, taken once.
 */
export async function changeOrder(
  temporal: Client,
  order: PaymentOrder,
  send: (handle: WorkflowHandle, updateId: string | undefined) => Promise<unknown>,
  updateId: string | undefined,
): Promise<void> {
  const handle = temporal.workflow.getHandle(orderWorkflowId(order.tenantId, order.orderRef));
  try {
    await temporal.connection.withDeadline(Date.now() + UPDATE_DEADLINE_MS, () => send(handle, updateId));
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const refusal = REFUSAL_ANSWERS[err.cause.type ?? ''];
      if (refusal) throw new ApiError(refusal.status, refusal.code, err.cause.message);
    }
    if (err instanceof WorkflowNotFoundError) {
      if (order.status !== 'ACTIVE') throw new ApiError(409, 'order_not_active', `the order is ${order.status}`);
      throw new ApiError(
        503,
        'order_not_running',
        'the order’s workflow is not running yet; try again shortly',
        undefined,
        { 'retry-after': '5' },
      );
    }
    throw err;
  }
}
