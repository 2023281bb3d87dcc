import { describe, expect, it } from 'vitest';
import { canTransition, INSTRUCTION_STATUSES, isFinal } from '../../domain/instruction-status.js';

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
    ] as const) {
      expect(canTransition(from, to), `${from} -> ${to}`).toBe(true);
    }
  });

  it('refuses skipping ahead, cancelling once processing, and leaving a final state', () => {
    expect(canTransition('PENDING', 'PROCESSING')).toBe(false);
    expect(canTransition('PENDING', 'SETTLED')).toBe(false);
    expect(canTransition('PROCESSING', 'CANCELLED')).toBe(false);
    for (const final of ['SETTLED', 'FAILED', 'CANCELLED'] as const) {
      expect(isFinal(final)).toBe(true);
      for (const to of INSTRUCTION_STATUSES) expect(canTransition(final, to)).toBe(false);
    }
    expect(isFinal('LATE')).toBe(false);
  });
});
