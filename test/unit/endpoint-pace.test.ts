import { describe, expect, it } from 'vitest';
import { EndpointPace } from '../../webhooks/endpoint-pace.js';

/** A pace on a clock the test moves, slow from 2 s. */
function paceAt() {
  let now = 0;
  const pace = new EndpointPace(2_000, () => now);
  return { pace, wait: (ms: number) => (now += ms) };
}

describe('an endpoint’s pace', () => {
  it('is unproven until one of its tries ends, then fast or slow by how long its tries took', () => {
    const { pace, wait } = paceAt();
    expect(pace.paceOf('e')).toBe('unproven');
    const ended = pace.start('e');
    expect(pace.paceOf('e')).toBe('unproven');
    wait(150);
    ended();
    expect(pace.paceOf('e')).toBe('fast');
    const slow = pace.start('s');
    wait(15_000);
    slow();
    expect(pace.paceOf('s')).toBe('slow');
  });

  it('is slow at once when two of its tries under way have run 2 s, before they end', () => {
    const { pace, wait } = paceAt();
    pace.start('e')();
    expect(pace.paceOf('e')).toBe('fast');
    const first = pace.start('e');
    wait(1_000);
    const second = pace.start('e');
    wait(1_000);
    // One try of 2 s under way is one slow answer among fast ones.
    expect(pace.paceOf('e')).toBe('fast');
    wait(999);
    expect(pace.paceOf('e')).toBe('fast');
    wait(1);
    expect(pace.paceOf('e')).toBe('slow');
    first();
    second();
    // Tries of 3 s and 2 s after one of none: the running mean (about 0.5 s) is fast again.
    expect(pace.paceOf('e')).toBe('fast');
  });

  it('weighs its recent tries: one timeout among fast tries leaves it fast, two in a row make it slow', () => {
    const { pace, wait } = paceAt();
    const tryTaking = (ms: number) => {
      const ended = pace.start('e');
      wait(ms);
      ended();
    };
    for (let n = 0; n < 20; n += 1) tryTaking(150);
    tryTaking(15_000);
    expect(pace.paceOf('e')).toBe('fast');
    tryTaking(15_000);
    expect(pace.paceOf('e')).toBe('slow');
    // Fast again after five fast tries: not held to two slots for long.
    let fastTries = 0;
    for (; pace.paceOf('e') === 'slow' && fastTries < 100; fastTries += 1) tryTaking(150);
    expect(fastTries).toBe(5);
  });

  it('counts the tries under way of each endpoint apart, whichever ends first', () => {
    const { pace } = paceAt();
    const first = pace.start('e');
    const second = pace.start('e');
    pace.start('other');
    expect(pace.underWay('e')).toBe(2);
    second();
    expect(pace.underWay('e')).toBe(1);
    first();
    expect([pace.underWay('e'), pace.underWay('other'), pace.underWay('never')]).toEqual([0, 1, 0]);
  });
});
