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

  it.each(['2027-02-30', '2027-13-01', '2027-02-30T10:00:00Z', '2027-01-31T09:30:00', '31/01/2027', '', 'tomorrow'])(
    'rejects %j',
    (value) => {
      expect(parseScheduleDate(value)).toBeUndefined();
    },
  );
});
