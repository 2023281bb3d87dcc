import type { Client } from '@temporalio/client';
import { expect } from 'vitest';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { eventually } from './eventually.js';
import { holdRow } from './row-hold.js';

/**
 * Sends `change` to the order's workflow and stops the workflow once it has taken it, before it
 * answers: its projections held, its answer waits for one (up to 5 s). The change's answer.
 */
export async function stoppedWhileAnswering<T>(
  client: Client,
  tenantId: string,
  orderRef: string,
  change: () => Promise<T>,
): Promise<T> {
  const handle = client.workflow.getHandle(orderWorkflowId(tenantId, orderRef));
  const updates = async () => {
    const { events } = await handle.fetchHistory();
    return {
      accepted: events!.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes),
      completed: events!.some((e) => e.workflowExecutionUpdateCompletedEventAttributes),
    };
  };
  const held = await holdRow('payment_order', 'tenant_id = $1 and order_ref = $2', [tenantId, orderRef]);
  let answer: T;
  try {
    const answering = change();
    await eventually(updates, (u) => u.accepted, { what: 'the change taken', intervalMs: 50 });
    await handle.terminate('an operator’s mistake');
    answer = await answering;
  } finally {
    await held.release();
  }
  // Taken and never answered: what the test is about.
  expect(await updates()).toEqual({ accepted: true, completed: false });
  return answer;
}
