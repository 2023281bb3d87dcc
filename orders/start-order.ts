import type { MikroORM } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { PaymentOrder } from '../db/entities/index.js';
import { reversalWindows } from '../domain/app-catalog.js';
import { orderWorkflowId, PAYMENTS_TASK_QUEUE } from './contract/ids.js';
import { planOf } from './contract/instruction-codec.js';
import { START_DEADLINE_MS } from './contract/limits.js';
import type { PaymentOrderInput } from './contract/messages.js';
import type { InstructionRow } from '../domain/instruction.js';
import {
  CustomerRefKey,
  NextActionAtKey,
  OrderRefKey,
  OrderStatusKey,
  TenantIdKey,
} from './contract/search-attributes.js';
import { instructionFromRow, type OrderRow } from './read-model.js';
import { paymentOrderWorkflow } from './workflow/payment-order.workflow.js';

/** The workflow input is rebuilt from the stored order, so the API and the reconciler start the same thing. */
export function workflowInputOf(order: OrderRow, instructions: readonly InstructionRow[]): PaymentOrderInput {
  return {
    tenantId: order.tenantId,
    orderId: order.id,
    orderRef: order.orderRef,
    customerRef: order.customerRef ?? undefined,
    dunningDelaysMs: order.dunningDelaysMs ?? undefined,
    returnsPolicy: order.returnsPolicy ?? undefined,
    arrearsExpiryDays: order.arrearsExpiryDays ?? undefined,
    reversalWindowDays: reversalWindows(),
    instructions: instructions.map((row) => planOf(instructionFromRow(row))),
  };
}

/**
 * Starts the workflow of a stored order (its instructions loaded), then marks the order started.
 * Safe to call twice: the workflow id is derived from the order, and an already-running workflow
 * for it counts as started. Gives up after a few seconds, so a caller does not hang while Temporal
 * is unreachable; an order left unmarked is the reconciler's to start.
 */
export async function startOrder(client: Client, orm: MikroORM, order: PaymentOrder): Promise<void> {
  await startOrderWorkflow(client, workflowInputOf(order, order.instructions.getItems()));
  await orm.em.fork().nativeUpdate(PaymentOrder, { id: order.id }, { workflowStartedAt: new Date() });
}

/** Starts the order's workflow by its function, typed end to end; an order already running counts as started. */
export async function startOrderWorkflow(client: Client, input: PaymentOrderInput): Promise<void> {
  const firstOpen = input.instructions.map((i) => i.openAt).sort()[0];
  try {
    await client.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
      client.workflow.start(paymentOrderWorkflow, {
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

/** How long a started order waits to be marked, so that the orders started about then share one statement. */
const MARK_DELAY_MS = 100;

/**
 * Marks orders started, those started about the same time in one statement, so that taking an
 * order costs no round trip for it. The mark only keeps the reconciler from starting the order
 * again, and starting it again is harmless (its workflow id is the order's): a mark a moment late,
 * or lost with the process, costs at most one start that finds the workflow running.
 */
export class StartMarks {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly orm: MikroORM,
    private readonly delayMs = MARK_DELAY_MS,
  ) {}

  add(orderId: string): void {
    this.pending.push(orderId);
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs).unref();
  }

  /** Marks every order added so far; a failure leaves them to the reconciler. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const ids = this.pending.splice(0);
    if (ids.length === 0) return;
    await this.orm.em
      .fork()
      .nativeUpdate(PaymentOrder, { id: { $in: ids } }, { workflowStartedAt: new Date() })
      .catch(() => undefined);
  }
}
