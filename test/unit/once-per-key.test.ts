import { describe, expect, it } from 'vitest';
import { OncePerKey } from '../../domain/once-per-key.js';

describe('once per key', () => {
  it('says each key at most once per period, each on its own, and forgets all past the keys it keeps', () => {
    const once = new OncePerKey(60_000, 2);
    expect(once.due('a', 1_000)).toBe(true);
    expect(once.due('a', 61_000)).toBe(false);
    expect(once.due('b', 61_000)).toBe(true);
    expect(once.due('a', 61_001)).toBe(true);
    // Two keys kept: a third starts again, so 'b' is said again before its minute.
    expect(once.due('c', 61_002)).toBe(true);
    expect(once.due('b', 61_003)).toBe(true);
  });
});
