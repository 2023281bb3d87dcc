import { describe, expect, it } from 'vitest';
import { MetadataSchema, RefSchema, TextSchema, TimestampQuerySchema } from '../../api/http/common-schemas.js';
import { InstructionInputSchema } from '../../orders/http/schemas.js';

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

describe('a ref', () => {
  it('is never a dot segment, which an address cannot hold: the order it named could not be read', () => {
    for (const ref of ['.', '..']) expect(RefSchema.safeParse(ref).error?.issues[0].message, ref).toMatch(/"\."/);
    for (const ref of ['...', '.a', 'a..b', 'ORD-1_x.2']) expect(RefSchema.safeParse(ref).success, ref).toBe(true);
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

describe("an instruction's amount", () => {
  const instruction = {
    instructionRef: 'a',
    direction: 'DEBIT',
    currency: 'EUR',
    country: 'DE',
    openDate: '2030-01-01',
    dueDate: '2030-01-02',
  };
  const issues = (amount: unknown, currency = 'EUR') =>
    InstructionInputSchema.safeParse({ ...instruction, amount, currency }).error?.issues.map((issue) => [
      issue.path.join('.'),
      issue.code === 'custom' ? String(issue.params?.code) : issue.code,
    ]);

  it('is told once for each fault: its shape, or else what it is in its currency', () => {
    expect(issues('125.50')).toBeUndefined();
    // The shape's own issue, not also the parser's same complaint in other words.
    for (const amount of ['abc', '-1', '1e5', '1.0000']) expect(issues(amount)).toEqual([['amount', 'invalid_format']]);
    expect(issues('1.005')).toEqual([['amount', 'invalid_amount_precision']]);
    expect(issues('0')).toEqual([['amount', 'invalid_amount']]);
    expect(issues('90071992547409.92')).toEqual([['amount', 'amount_too_large']]);
    // An unknown currency is the currency's fault alone.
    expect(issues('1.00', 'EURO')).toEqual([['currency', 'invalid_currency']]);
  });
});

describe('free text and metadata', () => {
  const codes = (result: {
    error?: { issues: { code: string; params?: Record<string, unknown>; path: PropertyKey[] }[] };
  }) => result.error?.issues.map((i) => [i.code === 'custom' ? String(i.params?.code) : i.code, i.path.join('.')]);

  it('take no secret key of a form that is one: a webhook signing secret, a provider’s secret or restricted key', () => {
    const secrets = [
      `whsec_${'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}`,
      'sk_live_51HqLyjWDarjtT1zdp7dc',
      'rk_test_4eC39HqLyjWDarjtT1zdp7dc',
    ];
    for (const secret of secrets) {
      expect(codes(TextSchema(200).safeParse(`Acme (${secret})`)), secret).toEqual([['secret_key_not_allowed', '']]);
      expect(codes(MetadataSchema.safeParse({ note: secret })), secret).toEqual([['secret_key_not_allowed', 'note']]);
      // A key holding one is named by the metadata: the key is what must not be repeated.
      expect(codes(MetadataSchema.safeParse({ [secret.slice(0, 40)]: 'x' })), secret).toEqual([
        ['secret_key_not_allowed', ''],
      ]);
    }
    // Words that merely start alike are taken.
    for (const text of ['whsec_ is the prefix', 'task_live_abcdefgh12', 'sk_test', 'desk_test_12345678', 'whsec_short'])
      expect(TextSchema(200).safeParse(text).success, text).toBe(true);
  });
});
