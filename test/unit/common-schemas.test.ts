import { describe, expect, it } from 'vitest';
import { TextSchema, TimestampQuerySchema } from '../../api/http/common-schemas.js';

describe('free text', () => {
  it('is limited as sent, before trimming, as the OpenAPI document says (maxLength), then trimmed and not blank', () => {
    const name = TextSchema(10);
    // Found by the fuzzer: leading spaces took a string past maxLength, and trimming let it in.
    expect(name.safeParse(`    ${'a'.repeat(10)}`).success).toBe(false);
    expect(name.safeParse('a'.repeat(10)).success).toBe(true);
    expect(name.parse('  Acme  ')).toBe('Acme');
    expect(name.safeParse('   ').success).toBe(false);
  });
});

describe('a time in a query', () => {
  const issues = (value: string) =>
    TimestampQuerySchema.safeParse(value).error?.issues.map((issue) =>
      issue.code === 'custom' ? String(issue.params?.code) : issue.code,
    );

  it('is an ISO 8601 time with offset in the years 2000–2199, each fault told once', () => {
    expect(issues('2027-01-01T00:00:00Z')).toBeUndefined();
    expect(issues('1999-12-31T23:59:59Z')).toEqual(['out_of_range']);
    // A time that is no time is not also out of range (zod runs the range check after a failed format).
    expect(issues('garbage')).toEqual(['invalid_format']);
    expect(issues('2027-13-45T00:00:00Z')).toEqual(['invalid_format']);
  });
});
