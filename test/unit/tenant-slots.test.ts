import { describe, expect, it } from 'vitest';
import { TenantSlots } from '../../domain/tenant-slots.js';

describe('tenant slots', () => {
  it('let each tenant hold one at most, and all tenants two, handing them back as exports end', () => {
    const slots = new TenantSlots(2, 1);
    expect(slots.refusal('a')).toBeUndefined();
    slots.take('a');
    // A tenant reading slowly holds its own slot only: another tenant still gets one.
    expect(slots.refusal('a')).toBe('tenant');
    expect(slots.refusal('b')).toBeUndefined();
    slots.take('b');
    expect(slots.refusal('c')).toBe('process');
    expect(slots.refusal('b')).toBe('tenant');
    slots.release('a');
    expect(slots.refusal('c')).toBeUndefined();
    expect(slots.refusal('a')).toBeUndefined();
    slots.take('c');
    slots.release('b');
    slots.release('c');
    expect(['a', 'b', 'c'].map((t) => slots.refusal(t))).toEqual([undefined, undefined, undefined]);
  });
});
