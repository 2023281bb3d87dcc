import { fromZonedTime } from 'date-fns-tz';

const DAY = '2[01][0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?';
const OFFSET = '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
/**
 * The shape of an open or due date: a day of the years 2000–2199, or a date-time with its offset.
 * The API document states it; parseScheduleDate also refuses days a month does not have.
 */
export const SCHEDULE_DATE_PATTERN = `^${DAY}(T${TIME}${OFFSET})?$`;
const DATE_ONLY = new RegExp(`^${DAY}$`);
const DATE_TIME_WITH_OFFSET = new RegExp(`^${DAY}T${TIME}${OFFSET}$`);

/** Whether an open or due date is written as a calendar date (midnight in a time zone the writer did not name). */
export function isDateOnly(value: string): boolean {
  return DATE_ONLY.test(value);
}

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
