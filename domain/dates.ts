import { fromZonedTime } from 'date-fns-tz';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Schedules are written in these calendar years (ARCHITECTURE.md, "Money, dates, references"). */
export const FIRST_SCHEDULE_YEAR = 2000;
export const LAST_SCHEDULE_YEAR = 2199;

export function isScheduleYear(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= FIRST_SCHEDULE_YEAR && year <= LAST_SCHEDULE_YEAR;
}

/**
 * Parses an open or due date: a calendar date means 00:00 of that day in `timeZone` (UTC when
 * unset), a date-time must carry its offset. Returns undefined for anything else, including
 * impossible dates such as 2027-02-30 and years outside 2000–2199 as written.
 */
export function parseScheduleDate(value: string, timeZone?: string): Date | undefined {
  const writtenYear = Number(value.slice(0, 4));
  if (!(writtenYear >= FIRST_SCHEDULE_YEAR && writtenYear <= LAST_SCHEDULE_YEAR)) return undefined;
  if (DATE_ONLY.test(value)) {
    const utcMidnight = new Date(`${value}T00:00:00Z`);
    if (Number.isNaN(utcMidnight.getTime()) || !utcMidnight.toISOString().startsWith(value)) return undefined;
    return timeZone ? fromZonedTime(`${value}T00:00:00`, timeZone) : utcMidnight;
  }
  if (DATE_TIME_WITH_OFFSET.test(value)) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return undefined;
    // Date() rolls 2027-02-30T.. over to March; compare the calendar part in the given offset.
    const [, month, day] = value.slice(0, 10).split('-').map(Number);
    const probe = new Date(Date.UTC(Number(value.slice(0, 4)), month - 1, day));
    return probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day ? date : undefined;
  }
  return undefined;
}

/** Whether `timeZone` is an IANA zone name this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return true;
  } catch {
    return false;
  }
}
