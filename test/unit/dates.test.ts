import { describe, expect, it } from 'vitest';
import { parseScheduleDate } from '../../domain/dates.js';

describe('parseScheduleDate', () => {
  it('reads a calendar date as 00:00 UTC of that day', () => {
    expect(parseScheduleDate('2027-01-31')?.toISOString()).toBe('2027-01-31T00:00:00.000Z');
  });

  it('honours the offset of a date-time', () => {
    expect(parseScheduleDate('2027-01-31T09:30:00+02:00')?.toISOString()).toBe('2027-01-31T07:30:00.000Z');
    expect(parseScheduleDate('2027-01-31T09:30Z')?.toISOString()).toBe('2027-01-31T09:30:00.000Z');
  });

  it('accepts the years 2000 to 2199 as written, whatever the time zone makes of them', () => {
    expect(parseScheduleDate('2000-01-01', 'Asia/Tokyo')?.toISOString()).toBe('1999-12-31T15:00:00.000Z');
    expect(parseScheduleDate('2199-12-31T23:00:00-05:00')?.toISOString()).toBe('2200-01-01T04:00:00.000Z');
  });

  it.each(['0000-01-01', '1999-12-31', '2200-01-01', '9999-12-31T00:00:00Z', '+275760-09-13'])(
    'rejects the year of %j',
    (value) => {
      expect(parseScheduleDate(value)).toBeUndefined();
    },
  );

  it.each(['2027-02-30', '2027-13-01', '2027-02-30T10:00:00Z', '2027-01-31T09:30:00', '31/01/2027', '', 'tomorrow'])(
    'rejects %j',
    (value) => {
      expect(parseScheduleDate(value)).toBeUndefined();
    },
  );
});
