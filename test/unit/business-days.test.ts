import Holidays from 'date-holidays';
import { describe, expect, it } from 'vitest';
import { BUSINESS_DAY_RULES, chargeDateFor, isBusinessDay, type BusinessDayRule } from '../../domain/business-days.js';

// Every date below was checked against the library and against the calendar: Easter 2027 is Sunday
// 28 March (Gauss/Meeus computus), weekdays from Python's datetime, UK bank holidays as GOV.UK lists them.

/** The UTC day a charge falls on, for cases in UTC. */
const dayOf = (date: Date) => date.toISOString().slice(0, 10);
const dueOn = (day: string) => new Date(`${day}T00:00:00Z`);
const charged = (due: string, country: string, rule: BusinessDayRule) =>
  dayOf(chargeDateFor(dueOn(due), { country, rule }));

describe('isBusinessDay', () => {
  it('closes on weekends', () => {
    expect(isBusinessDay('2027-07-31', 'GB')).toBe(false); // Saturday
    expect(isBusinessDay('2027-08-01', 'GB')).toBe(false); // Sunday
    expect(isBusinessDay('2027-07-30', 'GB')).toBe(true); // Friday
  });

  it('closes on Easter holidays', () => {
    expect(isBusinessDay('2027-03-26', 'GB')).toBe(false); // Good Friday
    expect(isBusinessDay('2027-03-29', 'GB')).toBe(false); // Easter Monday
    expect(isBusinessDay('2027-03-26', 'DE')).toBe(false); // Karfreitag
    expect(isBusinessDay('2027-03-29', 'DE')).toBe(false); // Ostermontag
    expect(isBusinessDay('2027-03-25', 'DE')).toBe(true); // Gründonnerstag, an observance only
  });

  it('closes on the substitute days of a Christmas that falls on a weekend', () => {
    // 2027: Christmas Day is a Saturday, Boxing Day a Sunday; GOV.UK: substitute days 27 and 28 December.
    expect(isBusinessDay('2027-12-27', 'GB')).toBe(false);
    expect(isBusinessDay('2027-12-28', 'GB')).toBe(false);
    expect(isBusinessDay('2027-12-29', 'GB')).toBe(true);
  });

  it('keeps the UK payment systems’ calendar: England and Wales’s bank holidays, not Scotland’s', () => {
    // The summer bank holiday, last Monday of August in England; Scotland's is the first Monday.
    expect(isBusinessDay('2027-08-30', 'GB')).toBe(false);
    expect(isBusinessDay('2027-08-02', 'GB')).toBe(true);
  });

  it('has only weekends for a country the library does not know', () => {
    expect(new Holidays().getCountries()).not.toHaveProperty('KW');
    expect(isBusinessDay('2027-02-25', 'KW')).toBe(true); // Kuwait's National Day, a Thursday, unknown to the library
    expect(isBusinessDay('2027-02-27', 'KW')).toBe(false); // Saturday
    expect(isBusinessDay('2027-12-27', 'XX')).toBe(true); // a Monday
  });

  it.each(['2027-02-30', '27-03-26', '2027-3-26', ''])('refuses %j', (day) => {
    expect(() => isBusinessDay(day, 'GB')).toThrow(RangeError);
  });
});

describe('chargeDateFor', () => {
  it('moves an Easter collection past the four-day weekend, or before it', () => {
    expect(charged('2027-03-26', 'GB', 'FOLLOWING')).toBe('2027-03-30'); // Good Friday → Tuesday
    expect(charged('2027-03-26', 'GB', 'PRECEDING')).toBe('2027-03-25'); // → Maundy Thursday
    expect(charged('2027-03-28', 'DE', 'FOLLOWING')).toBe('2027-03-30'); // Easter Sunday, past Ostermontag
    expect(charged('2027-03-29', 'DE', 'PRECEDING')).toBe('2027-03-25'); // Ostermontag, before Karfreitag
  });

  it('skips the substitute bank holidays of a weekend Christmas', () => {
    expect(charged('2027-12-25', 'GB', 'FOLLOWING')).toBe('2027-12-29'); // Sat 25 → Wed 29
    expect(charged('2027-12-25', 'GB', 'PRECEDING')).toBe('2027-12-24');
  });

  it('skips a weekday Christmas and the Monday standing in for a Saturday Boxing Day', () => {
    // 2026: Christmas Day is a Friday, Boxing Day a Saturday; GOV.UK: substitute Monday 28 December.
    expect(charged('2026-12-24', 'GB', 'FOLLOWING')).toBe('2026-12-24'); // Christmas Eve is no holiday in the UK
    expect(charged('2026-12-25', 'GB', 'FOLLOWING')).toBe('2026-12-29');
    expect(charged('2026-12-25', 'GB', 'PRECEDING')).toBe('2026-12-24');
  });

  it('keeps a month-end collection in its month under modified following', () => {
    // Saturday 31 July 2027. Monday 2 August is Scotland's summer bank holiday, not the whole of GB's.
    expect(charged('2027-07-31', 'GB', 'FOLLOWING')).toBe('2027-08-02');
    expect(charged('2027-07-31', 'GB', 'MODIFIED_FOLLOWING')).toBe('2027-07-30');
    expect(charged('2027-07-31', 'GB', 'PRECEDING')).toBe('2027-07-30');
  });

  it('follows under modified following when the month allows', () => {
    expect(charged('2027-03-26', 'GB', 'MODIFIED_FOLLOWING')).toBe('2027-03-30');
  });

  it('leaves a Sunday alone under NONE', () => {
    const sunday = dueOn('2027-08-01');
    expect(chargeDateFor(sunday, { country: 'GB', rule: 'NONE' })).toBe(sunday);
  });

  it.each(BUSINESS_DAY_RULES)('returns a business day unchanged under %s', (rule) => {
    const tuesday = new Date('2027-03-30T10:15:00Z');
    expect(chargeDateFor(tuesday, { country: 'GB', rule })).toBe(tuesday);
  });

  it('keeps the local time of day in the time zone', () => {
    const options = { country: 'DE', rule: 'FOLLOWING', timeZone: 'Europe/Berlin' } as const;
    // Sunday 21 March 2027, 09:30 CET → Monday 09:30 CET.
    expect(chargeDateFor(new Date('2027-03-21T08:30:00Z'), options).toISOString()).toBe('2027-03-22T08:30:00.000Z');
    // Saturday 27 March, 09:30 CET; summer time starts on Sunday 28, Monday 29 is Ostermontag → Tuesday 09:30 CEST.
    expect(chargeDateFor(new Date('2027-03-27T08:30:00Z'), options).toISOString()).toBe('2027-03-30T07:30:00.000Z');
    // Sunday 28 March, 09:30 CEST, the day summer time starts, back past Karfreitag → Thursday 09:30 CET.
    expect(chargeDateFor(new Date('2027-03-28T07:30:00Z'), { ...options, rule: 'PRECEDING' }).toISOString()).toBe(
      '2027-03-25T08:30:00.000Z',
    );
  });

  it('judges the day in the time zone, not in UTC', () => {
    // Saturday 31 July 2027 22:15 UTC is already Sunday 1 August 07:15 in Tokyo.
    const due = new Date('2027-07-31T22:15:00Z');
    expect(chargeDateFor(due, { country: 'GB', rule: 'FOLLOWING' }).toISOString()).toBe('2027-08-02T22:15:00.000Z');
    expect(chargeDateFor(due, { country: 'JP', rule: 'FOLLOWING', timeZone: 'Asia/Tokyo' }).toISOString()).toBe(
      '2027-08-01T22:15:00.000Z', // Monday 2 August 07:15 in Tokyo
    );
  });

  it('moves a collection in a country the library does not know over the weekend only', () => {
    expect(charged('2027-02-27', 'KW', 'FOLLOWING')).toBe('2027-03-01');
  });
});
