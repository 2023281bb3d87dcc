import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';

const EventType = proto.temporal.api.enums.v1.EventType;

/** What a workflow's history holds, as the benchmarks report it per settled instruction. */
export interface HistoryCounts {
  events: number;
  bytes: number;
  /** Activities scheduled, by activity type; local ones by their markers, as "projectOrder (local)". */
  activities: Record<string, number>;
  workflowTasks: number;
  /** Workflow task started → completed of the first task, in ms. */
  firstTaskMs: number;
}

const millisOf = (time: proto.google.protobuf.ITimestamp | null | undefined) =>
  Number(time?.seconds ?? 0) * 1000 + Math.round((time?.nanos ?? 0) / 1e6);

export function countHistory(history: proto.temporal.api.history.v1.IHistory): HistoryCounts {
  const list = history.events ?? [];
  const activities: Record<string, number> = {};
  for (const e of list) {
    const local = localActivityMarker(e);
    const type =
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ? (e.activityTaskScheduledEventAttributes?.activityType?.name ?? 'unknown')
        : local && `${local.activityType} (local)`;
    if (type !== undefined) activities[type] = (activities[type] ?? 0) + 1;
  }
  const started = list.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  const completed = list.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  return {
    events: list.length,
    bytes: proto.temporal.api.history.v1.History.encode(history).finish().length,
    activities,
    workflowTasks: list.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length,
    firstTaskMs: millisOf(completed?.eventTime) - millisOf(started?.eventTime),
  };
}

/** What a local activity's marker records (an attempt that failed among them); undefined for any other event. */
export function localActivityMarker(
  e: proto.temporal.api.history.v1.IHistoryEvent,
): { activityType: string; failed: boolean } | undefined {
  const marker = e.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = defaultPayloadConverter.fromPayload<{ activity_type?: string }>(marker.details!.data.payloads![0]);
  return { activityType: data.activity_type ?? 'unknown', failed: Boolean(marker.failure) };
}

/**
 * Whether the history has nothing under way: every activity and workflow task scheduled has closed,
 * and the last workflow task completed (a failed or timed-out task's retries are not written to the
 * history until one completes, so a failing task looks closed).
 */
export function historyAtRest(history: proto.temporal.api.history.v1.IHistory): boolean {
  const list = history.events ?? [];
  const taskEnds = [
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
  ];
  const lastTaskEnd = list.filter((e) => taskEnds.includes(e.eventType!)).at(-1);
  if (lastTaskEnd?.eventType !== undefined && lastTaskEnd.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return false;
  const count = (...types: proto.temporal.api.enums.v1.EventType[]) =>
    list.filter((e) => types.includes(e.eventType!)).length;
  // Not "the last event closes a task": a task's commands (a local activity's marker, a timer) come after it.
  return (
    count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) ===
      count(
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
      ) && count(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) === count(...taskEnds)
  );
}

/** A workflow's history once nothing is under way in it, or as it is after `maxWaitMs`. */
export async function historyOnceAtRest(
  handle: { fetchHistory(): Promise<proto.temporal.api.history.v1.IHistory> },
  maxWaitMs = 30_000,
): Promise<proto.temporal.api.history.v1.IHistory> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const history = await handle.fetchHistory();
    if (historyAtRest(history) || Date.now() > deadline) return history;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Activities by type, as "2 projectOrder + 1 executePayment", each divided by `per`. */
export function describeActivities(activities: Record<string, number>, per: number): string {
  const entries = Object.entries(activities).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return '0';
  return entries.map(([type, n]) => `${+(n / per).toFixed(2)} ${type}`).join(' + ');
}

/** Where a payment's lag from its due instant went, in ms, read from its workflow's history. */
export interface LagPhases {
  /** Due instant → the timer fired. */
  timer: number;
  /** Timer fired → the workflow task that sends the payment call started (waiting for a worker). */
  taskQueued: number;
  /** That task, started → completed. */
  taskRun: number;
  /** The call scheduled → its last attempt started (earlier attempts and their retry waits included). */
  callQueued: number;
  /** The call started → completed (the provider, and the activity's own work). */
  callRun: number;
  /** The call completed → the workflow task that takes its answer started. */
  answerQueued: number;
}

export const LAG_PHASES: (keyof LagPhases)[] = [
  'timer',
  'taskQueued',
  'taskRun',
  'callQueued',
  'callRun',
  'answerQueued',
];

/** The phases of the first call of `activityType` made after `dueMs`, or undefined when there is none. */
export function lagPhases(
  history: proto.temporal.api.history.v1.IHistory,
  dueMs: number,
  activityType: string,
): LagPhases | undefined {
  const list = history.events ?? [];
  const at = (i: number) => millisOf(list[i]?.eventTime);
  const scheduled = list.findIndex(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
      e.activityTaskScheduledEventAttributes?.activityType?.name === activityType &&
      millisOf(e.eventTime) >= dueMs - 1000,
  );
  if (scheduled < 0) return undefined;
  const before = (from: number, type: proto.temporal.api.enums.v1.EventType) => {
    for (let i = from; i >= 0; i--) if (list[i].eventType === type) return i;
    return -1;
  };
  const after = (from: number, type: proto.temporal.api.enums.v1.EventType) =>
    list.findIndex((e, i) => i > from && e.eventType === type);
  const taskCompleted = before(scheduled, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  const taskStarted = before(taskCompleted, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  // The task must have been scheduled by the due timer firing; anything else is no sample.
  const fired = before(taskStarted, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) - 1;
  if (list[fired]?.eventType !== EventType.EVENT_TYPE_TIMER_FIRED) return undefined;
  const id = list[scheduled].eventId;
  const started = list.findIndex(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED &&
      String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(id),
  );
  const completed = list.findIndex(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
      String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(id),
  );
  const answerTask = after(completed, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  if ([taskStarted, fired, started, completed, answerTask].some((i) => i < 0)) return undefined;
  return {
    timer: at(fired) - dueMs,
    taskQueued: at(taskStarted) - at(fired),
    taskRun: at(taskCompleted) - at(taskStarted),
    callQueued: at(started) - at(scheduled),
    callRun: at(completed) - at(started),
    answerQueued: at(answerTask) - at(completed),
  };
}
