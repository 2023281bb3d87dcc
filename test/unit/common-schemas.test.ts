import { describe, expect, it } from 'vitest';
import { TextSchema } from '../../api/http/common-schemas.js';

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
