import { describe, expect, it } from 'vitest';
import { canTransition, INSTRUCTION_STATUSES, isAtRest, orderStatusOf } from '../../domain/instruction-status.js';

describe('instruction state machine', () => {
  it('allows the paths of the lifecycle in ARCHITECTURE.md', () => {
    for (const [from, to] of [
      ['PENDING', 'OPEN'],
      ['OPEN', 'PROCESSING'],
      ['OPEN', 'LATE'],
      ['PROCESSING', 'SETTLED'],
      ['PROCESSING', 'LATE'],
      ['PROCESSING', 'FAILED'],
      ['LATE', 'PROCESSING'],
      ['LATE', 'SETTLED'],
      ['LATE', 'FAILED'],
      ['PENDING', 'CANCELLED'],
      ['OPEN', 'CANCELLED'],
      ['LATE', 'CANCELLED'],
      ['SETTLED', 'RETURNED'],
      ['RETURNED', 'LATE'],
      ['RETURNED', 'FAILED'],
      ['FAILED', 'OPEN'],
    ] as const) {
      expect(canTransition(from, to), `${from} -> ${to}`).toBe(true);
    }
  });

  it('refuses skipping ahead, cancelling once processing, and leaving a state at rest but by a return or a retry', () => {
    expect(canTransition('PENDING', 'PROCESSING')).toBe(false);
    expect(canTransition('PENDING', 'SETTLED')).toBe(false);
    expect(canTransition('PROCESSING', 'CANCELLED')).toBe(false);
    for (const atRest of ['SETTLED', 'FAILED', 'CANCELLED'] as const) expect(isAtRest(atRest)).toBe(true);
    for (const live of ['PENDING', 'OPEN', 'PROCESSING', 'LATE', 'RETURNED'] as const)
      expect(isAtRest(live)).toBe(false);
    const leaving = (from: (typeof INSTRUCTION_STATUSES)[number]) =>
      INSTRUCTION_STATUSES.filter((to) => canTransition(from, to));
    expect(leaving('SETTLED')).toEqual(['RETURNED']);
    expect(leaving('FAILED')).toEqual(['OPEN']);
    expect(leaving('CANCELLED')).toEqual([]);
    // A settled payment cannot be cancelled or failed: only taken back.
    expect(canTransition('SETTLED', 'CANCELLED')).toBe(false);
    expect(canTransition('SETTLED', 'FAILED')).toBe(false);
  });

  it('tells an order’s outcome honestly: COMPLETED only when every instruction settled or was cancelled', () => {
    expect(orderStatusOf(['SETTLED', 'LATE'], false)).toBe('ACTIVE');
    expect(orderStatusOf(['SETTLED', 'RETURNED'], false)).toBe('ACTIVE');
    expect(orderStatusOf(['SETTLED', 'CANCELLED'], false)).toBe('COMPLETED');
    expect(orderStatusOf(['SETTLED', 'FAILED'], false)).toBe('COMPLETED_WITH_FAILURES');
    expect(orderStatusOf(['FAILED', 'FAILED'], false)).toBe('COMPLETED_WITH_FAILURES');
    expect(orderStatusOf(['CANCELLED', 'CANCELLED'], false)).toBe('CANCELLED');
    expect(orderStatusOf(['SETTLED', 'CANCELLED'], true)).toBe('CANCELLED');
  });
});
