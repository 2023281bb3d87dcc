import { describe, expect, it } from 'vitest';
import { ENDPOINT_PACE_KEPT_MS, SLOW_WEBHOOK_TRY_MS } from '../../domain/webhook.js';
import { EndpointPace, slotRefusal, takesFastSlots, type Pace } from '../../webhooks/endpoint-pace.js';

/** A pace on a clock the test moves. */
function paceAt() {
  let now = 0;
  const pace = new EndpointPace(SLOW_WEBHOOK_TRY_MS, () => now);
  const wait = (ms: number) => (now += ms);
  /** A try of `endpoint` starting, in a fast endpoint's slot if its pace is fast, as attempt-delivery takes it. */
  const start = (endpoint: string, account = 'acct') =>
    pace.start(endpoint, account, takesFastSlots(pace.paceOf(endpoint, account)));
  /** A try of `endpoint` answered after `ms`. */
  const tryTaking = (endpoint: string, ms: number, account = 'acct') => {
    const tried = start(endpoint, account);
    wait(ms);
    tried.answered(ms);
    tried.ended();
  };
  return { pace, wait, start, tryTaking };
}

describe('an endpoint’s pace', () => {
  it('is unproven until one of its tries is answered, then fast or slow by how long its answers took', () => {
    const { pace, start, tryTaking } = paceAt();
    expect(pace.paceOf('e', 'acct')).toBe('unproven');
    // A try that sent nothing (a URL refused) says nothing of how fast it answers.
    start('e', 'acct').ended();
    expect(pace.paceOf('e', 'acct')).toBe('unproven');
    tryTaking('e', 150);
    expect(pace.paceOf('e', 'acct')).toBe('fast');
    tryTaking('s', 15_000);
    expect(pace.paceOf('s', 'acct')).toBe('slow');
    // Slow but answering, in 2 or 3 s: fast enough to keep the slots it needs.
    tryTaking('steady', 3_000);
    expect(pace.paceOf('steady', 'acct')).toBe('fast');
  });

  it('is stale when it answered fast but not for a while, and its next answer alone is then its pace', () => {
    const { pace, wait, start, tryTaking } = paceAt();
    for (let n = 0; n < 20; n += 1) tryTaking('e', 150);
    wait(ENDPOINT_PACE_KEPT_MS);
    expect(pace.paceOf('e', 'acct')).toBe('fast');
    wait(1);
    expect(pace.paceOf('e', 'acct')).toBe('stale');
    // Its receiver now hangs: its first timeout makes it slow (the old mean would have kept it fast).
    tryTaking('e', 15_000);
    expect(pace.paceOf('e', 'acct')).toBe('slow');
    // A slow one stays slow however long it is quiet; one answer of 150 ms, after a while, makes it fast.
    wait(ENDPOINT_PACE_KEPT_MS + 1);
    expect(pace.paceOf('e', 'acct')).toBe('slow');
    tryTaking('e', 150);
    expect(pace.paceOf('e', 'acct')).toBe('fast');
    // A try begun fast just before its pace went stale, and timed out after, counts alone too.
    for (let n = 0; n < 20; n += 1) tryTaking('f', 150);
    wait(ENDPOINT_PACE_KEPT_MS - 1_000);
    const late = start('f', 'acct');
    wait(15_000);
    late.answered(15_000);
    late.ended();
    expect(pace.paceOf('f', 'acct')).toBe('slow');
  });

  it('weighs its recent answers: timeouts among fast answers leave it fast until four in a row', () => {
    const { pace, tryTaking } = paceAt();
    for (let n = 0; n < 20; n += 1) tryTaking('e', 150);
    const paces = [];
    for (let n = 0; n < 4; n += 1) {
      tryTaking('e', 15_000);
      paces.push(pace.paceOf('e', 'acct'));
    }
    expect(paces).toEqual(['fast', 'fast', 'fast', 'slow']);
    tryTaking('e', 150);
    expect(pace.paceOf('e', 'acct')).toBe('fast');
  });

  it('is slow at once when two of its tries have been under way 5 s, and they are half of its tries or more', () => {
    const { pace, wait, start, tryTaking } = paceAt();
    tryTaking('e', 150);
    const first = start('e', 'acct');
    wait(1_000);
    const second = start('e', 'acct');
    wait(4_000);
    // One try of 5 s under way is one slow answer among fast ones.
    expect(pace.paceOf('e', 'acct')).toBe('fast');
    wait(999);
    expect(pace.paceOf('e', 'acct')).toBe('fast');
    wait(1);
    expect(pace.paceOf('e', 'acct')).toBe('slow');
    first.ended();
    second.ended();
    expect(pace.paceOf('e', 'acct')).toBe('fast');

    // A busy endpoint whose two slowest of five are stuck is not: the rest of its tries flow.
    const stuck = [start('busy', 'acct'), start('busy', 'acct')];
    wait(5_000);
    const flowing = [start('busy', 'acct'), start('busy', 'acct'), start('busy', 'acct')];
    tryTaking('busy', 150);
    expect(pace.paceOf('busy', 'acct')).toBe('fast');
    flowing.pop()!.ended();
    // Two stuck of four under way: half.
    expect(pace.paceOf('busy', 'acct')).toBe('slow');
    for (const t of [...stuck, ...flowing]) t.ended();
  });

  it('is slow for every endpoint of an account with four tries stuck across its endpoints, one each', () => {
    const { pace, wait, start, tryTaking } = paceAt();
    const endpoints = ['e1', 'e2', 'e3', 'e4', 'e5'];
    for (const e of endpoints) tryTaking(e, 150);
    tryTaking('elsewhere', 150, 'other');
    // Each endpoint leads to one receiver gone quiet: none has two stuck, its account has four.
    const held = endpoints.slice(0, 4).map((e) => start(e, 'acct'));
    wait(5_000);
    expect(endpoints.map((e) => pace.paceOf(e, 'acct'))).toEqual(endpoints.map(() => 'slow'));
    expect(pace.paceOf('elsewhere', 'other')).toBe('fast');
    for (const t of held) t.ended();
    expect(pace.paceOf('e5', 'acct')).toBe('fast');
  });

  it('leaves an account’s fast endpoints fast while its slow ones are stuck: those have slots of their own', () => {
    const { pace, wait, start, tryTaking } = paceAt();
    tryTaking('fast', 150);
    // Two new endpoints that never answer: four tries stuck in the slots for endpoints not known fast.
    const stuck = ['new1', 'new1', 'new2', 'new2'].map((e) => start(e));
    const flowing = start('fast');
    wait(5_000);
    expect(pace.paceOf('new1', 'acct')).toBe('slow');
    expect(pace.paceOf('fast', 'acct')).toBe('fast');
    for (const t of [...stuck, flowing]) t.ended();
  });

  it('counts the tries under way of each endpoint apart, whichever ends first, each once', () => {
    const { pace, start } = paceAt();
    const first = start('e', 'acct');
    const second = start('e', 'acct');
    start('other', 'acct');
    expect(pace.underWay('e')).toBe(2);
    second.ended();
    second.ended();
    expect(pace.underWay('e')).toBe(1);
    first.ended();
    expect([pace.underWay('e'), pace.underWay('other'), pace.underWay('never')]).toEqual([0, 1, 0]);
  });
});

describe('the slots a webhook try may take, by its endpoint’s pace', () => {
  const paces: Pace[] = ['fast', 'stale', 'unproven', 'slow'];
  const free = { accountFull: false, slowSlotsFull: false, endpointUnderWay: 0 };

  it('holds every pace to its account’s slots', () => {
    expect(paces.map((pace) => slotRefusal(pace, { ...free, accountFull: true }))).toEqual(Array(4).fill('account'));
  });

  it('holds a fast endpoint to nothing more, and the others to two of their own under way', () => {
    expect(paces.map((pace) => slotRefusal(pace, free))).toEqual([null, null, null, null]);
    expect(paces.map((pace) => slotRefusal(pace, { ...free, endpointUnderWay: 1 }))).toEqual([null, null, null, null]);
    expect(paces.map((pace) => slotRefusal(pace, { ...free, endpointUnderWay: 2 }))).toEqual([
      null,
      'slow endpoint',
      'slow endpoint',
      'slow endpoint',
    ]);
  });

  it('keeps a stale endpoint out of the few slots its account’s dead endpoints may hold', () => {
    expect(paces.map((pace) => slotRefusal(pace, { ...free, slowSlotsFull: true }))).toEqual([
      null,
      null,
      'account’s slow endpoints',
      'account’s slow endpoints',
    ]);
    expect(paces.map(takesFastSlots)).toEqual([true, true, false, false]);
  });
});
