import { formatInTimeZone, fromZonedTime } from 'date-fns-tz';
import Holidays, { type HolidaysTypes } from 'date-holidays';

/** How a charge due on a day banks are closed moves (the ISDA business day conventions). */
export const BUSINESS_DAY_RULES = ['FOLLOWING', 'MODIFIED_FOLLOWING', 'PRECEDING', 'NONE'] as const;
export type BusinessDayRule = (typeof BUSINESS_DAY_RULES)[number];

const DAY_MS = 86_400_000;
const NOON_MS = DAY_MS / 2;
/** Far longer than any run of closed days a real calendar has: reaching it means a broken calendar. */
const MAX_SEARCH_DAYS = 31;
/** Banks stay open on optional, school and observance days. */
const BANK_CLOSING_TYPES: HolidaysTypes.HolidayType[] = ['public', 'bank'];
const NO_HOLIDAYS: ReadonlySet<string> = new Set();

const isoDay = (utcMidnight: number): string => new Date(utcMidnight).toISOString().slice(0, 10);

/**
 * Where a country's payment systems keep another region's calendar: the UK's (Bacs, Faster Payments,
 * CHAPS) close on England and Wales's bank holidays, which date-holidays keeps to the nations.
 */
const PAYMENT_SYSTEM_REGION: Record<string, string> = { GB: 'ENG' };

let knownCountries: ReadonlySet<string> | undefined;
const calendars = new Map<string, Holidays>();
const holidayDaysByYear = new Map<string, Set<string>>();

function calendarOf(country: string): Holidays | undefined {
  knownCountries ??= new Set(Object.keys(new Holidays().getCountries()));
  // Exact codes only (the library would upper-case "gb"); a calendar per stray code would grow the caches.
  if (!knownCountries.has(country)) return undefined;
  let calendar = calendars.get(country);
  if (!calendar) {
    // In UTC the start and end of a holiday read as the wall-clock times of its country.
    calendar = new Holidays(
      { country, state: PAYMENT_SYSTEM_REGION[country] },
      { types: BANK_CLOSING_TYPES, timezone: 'UTC' },
    );
    calendars.set(country, calendar);
  }
  return calendar;
}

/** The days of `year` a holiday closes the banks of `country` on, whatever the weekday. */
function holidayDays(country: string, year: number): ReadonlySet<string> {
  const calendar = calendarOf(country);
  if (!calendar) return NO_HOLIDAYS;
  const key = `${country} ${year}`;
  let days = holidayDaysByYear.get(key);
  if (!days) {
    days = new Set();
    // A holiday of several days (Eid al-Adha, Lunar New Year) can begin in the year before.
    for (const holiday of [...calendar.getHolidays(year - 1), ...calendar.getHolidays(year)]) {
      // `date` names the holiday's day even when it starts the evening before (Islamic holidays run
      // sunset to sunset) or at 14:00 (German Christmas Eve, a day banks close).
      const firstDay = Date.parse(`${holiday.date.slice(0, 10)}T00:00:00Z`);
      const end = holiday.end.getTime();
      // A day after it closes too if the holiday still holds at noon: its end is a wall-clock time in UTC.
      for (let midnight = firstDay; midnight === firstDay || midnight + NOON_MS < end; midnight += DAY_MS) {
        const day = isoDay(midnight);
        if (day.startsWith(`${year}-`)) days.add(day);
      }
    }
    holidayDaysByYear.set(key, days);
  }
  return days;
}

function utcMidnight(day: string): number {
  const midnight = /^\d{4}-\d{2}-\d{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN;
  // Date.parse rolls 2027-02-30 over to March.
  if (Number.isNaN(midnight) || isoDay(midnight) !== day) {
    throw new RangeError(`not a calendar day: ${JSON.stringify(day)}`);
  }
  return midnight;
}

/**
 * Whether banks of `country` (ISO 3166-1 alpha-2, upper case) are open on `day` (YYYY-MM-DD): not
 * Saturday or Sunday, nor a public or bank holiday of the whole country (regional ones such as
 * England's August bank holiday do not count). A country date-holidays does not know has weekends only.
 */
export function isBusinessDay(day: string, country: string): boolean {
  const weekday = new Date(utcMidnight(day)).getUTCDay();
  if (weekday === 0 || weekday === 6) return false;
  return !holidayDays(country, Number(day.slice(0, 4))).has(day);
}

function nearestBusinessDay(day: string, country: string, step: 1 | -1): string {
  const midnight = utcMidnight(day);
  for (let n = 1; n <= MAX_SEARCH_DAYS; n++) {
    const candidate = isoDay(midnight + step * n * DAY_MS);
    if (isBusinessDay(candidate, country)) return candidate;
  }
  throw new Error(`no business day in ${country} within ${MAX_SEARCH_DAYS} days of ${day}`);
}

/**
 * The instant to charge a collection due at `due`: moved by whole days, at the same local time of
 * day in `timeZone` (UTC when unset), so that its local day is a business day of `country` under
 * `rule`. A due instant on a business day is returned as is, under every rule.
 */
export function chargeDateFor(due: Date, options: { country: string; rule: BusinessDayRule; timeZone?: string }): Date {
  const { country, rule, timeZone = 'UTC' } = options;
  if (rule === 'NONE') return due;
  const day = formatInTimeZone(due, timeZone, 'yyyy-MM-dd');
  if (isBusinessDay(day, country)) return due;
  let chargeDay = nearestBusinessDay(day, country, rule === 'PRECEDING' ? -1 : 1);
  // Modified following keeps the charge in the month it is due in (month-end collections).
  if (rule === 'MODIFIED_FOLLOWING' && chargeDay.slice(0, 7) !== day.slice(0, 7)) {
    chargeDay = nearestBusinessDay(day, country, -1);
  }
  return fromZonedTime(`${chargeDay}T${formatInTimeZone(due, timeZone, 'HH:mm:ss.SSS')}`, timeZone);
}
