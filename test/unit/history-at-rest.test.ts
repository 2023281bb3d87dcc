import proto from '@temporalio/proto';
import { expect, it } from 'vitest';
import { historyAtRest } from '../../bench/support/history-counts.js';

const { EventType } = proto.temporal.api.enums.v1;
const history = (...types: proto.temporal.api.enums.v1.EventType[]): proto.temporal.api.history.v1.IHistory => ({
  events: types.map((eventType) => ({ eventType })),
});
const task = [
  EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
];

it('takes a history for at rest only when every task and activity has closed, and the last workflow task completed', () => {
  const started = history(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ...task);
  expect(historyAtRest(started)).toBe(true);
  expect(historyAtRest(history(...task, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED))).toBe(false);
  expect(historyAtRest(history(...task.slice(0, 2)))).toBe(false);
  // A failed task is retried, and its retries are not in the history until one completes.
  const failing = history(...task, ...task.slice(0, 2), EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
  expect(historyAtRest(failing)).toBe(false);
  expect(historyAtRest(history(...task, ...task.slice(0, 2), EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT))).toBe(
    false,
  );
  expect(historyAtRest(history(...failing.events!.map((e) => e.eventType!), ...task))).toBe(true);
});
