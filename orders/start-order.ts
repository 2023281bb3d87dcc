import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import { orderWorkflowId, type PaymentOrderInput, type PlannedInstruction } from '../domain/order.js';
import { PAYMENTS_TASK_QUEUE } from './contract/messages.js';
import {
  CustomerRefKey,
  NextActionAtKey,
  OrderRefKey,
  OrderStatusKey,
  TenantIdKey,
} from './contract/search-attributes.js';

/** The workflow input is rebuilt from the stored order, so the API and the reconciler start the same thing. */
export function workflowInputOf(order: PaymentOrder): PaymentOrderInput {
  return {
    tenantId: order.tenantId,
    orderId: order.id,
    orderRef: order.orderRef,
    customerRef: order.customerRef ?? undefined,
    dunningDelaysMs: order.dunningDelaysMs ?? undefined,
    instructions: order.instructions.getItems().map(plannedInstructionOf),
  };
}

/** An instruction's plan from its stored row; every stored instruction was resolved against its scheme. */
export function plannedInstructionOf(i: PaymentInstruction): PlannedInstruction {
  return {
    instructionId: i.id,
    position: i.position,
    instructionRef: i.instructionRef,
    direction: i.direction,
    amountMinor: i.amountMinor.toString(),
    currency: i.currency,
    country: i.country,
    openAt: i.openAt.toISOString(),
    dueAt: i.dueAt.toISOString(),
    customerRef: i.customerRef ?? undefined,
    financialInstrumentId: i.financialInstrumentId ?? undefined,
    schemeId: i.schemeId!,
    schemeVersion: i.schemeVersion!,
    options: i.resolvedOptions ?? [],
    appId: i.appId!,
    paymentMethod: i.paymentMethod!,
  };
}

/** How long a caller waits for Temporal to accept a start before leaving it to the reconciler. */
const START_DEADLINE_MS = 5_000;

/**
 * Starts the order's workflow. Safe to call twice: the workflow id is derived from the order, and
 * an already-running workflow for it counts as started. Gives up after a few seconds, so an API
 * request does not hang while Temporal is unreachable.
 */
export async function startOrderWorkflow(client: Client, input: PaymentOrderInput): Promise<void> {
  const firstOpen = input.instructions.map((i) => i.openAt).sort()[0];
  try {
    await client.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
      client.workflow.start('paymentOrderWorkflow', {
        workflowId: orderWorkflowId(input.tenantId, input.orderRef),
        taskQueue: PAYMENTS_TASK_QUEUE,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: TenantIdKey, value: input.tenantId },
          { key: OrderRefKey, value: input.orderRef },
          ...(input.customerRef ? [{ key: CustomerRefKey, value: input.customerRef }] : []),
          { key: OrderStatusKey, value: 'ACTIVE' },
          { key: NextActionAtKey, value: new Date(firstOpen) },
        ],
      }),
    );
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return;
    throw err;
  }
}
