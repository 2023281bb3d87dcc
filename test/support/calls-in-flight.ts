import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { ExecutePaymentInput } from '../../orders/contract/activities.js';

const EventType = proto.temporal.api.enums.v1.EventType;
const CLOSED = new Set([
  EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
  EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
]);

/**
 * The payment calls the orders' workflows have sent and not yet seen answered, as
 * `orderRef/instructionRef`, read from their histories: what was in flight, whatever the read model
 * shows yet (it shows a call with its answer, or after a while).
 */
export async function paymentCallsInFlight(client: Client, workflowIds: string[]): Promise<string[]> {
  const inFlight: string[] = [];
  for (const workflowId of workflowIds) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const closed = new Set(events.filter((e) => CLOSED.has(e.eventType!)).map((e) => String(closedCallOf(e))));
    for (const e of events) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== 'executePayment' || closed.has(String(e.eventId))) continue;
      const input = defaultPayloadConverter.fromPayload<ExecutePaymentInput>(scheduled.input!.payloads![0]);
      inFlight.push(`${input.request.orderRef}/${input.request.instructionRef}`);
    }
  }
  return inFlight;
}

function closedCallOf(e: proto.temporal.api.history.v1.IHistoryEvent) {
  return (
    e.activityTaskCompletedEventAttributes ??
    e.activityTaskFailedEventAttributes ??
    e.activityTaskTimedOutEventAttributes ??
    e.activityTaskCanceledEventAttributes
  )?.scheduledEventId;
}
