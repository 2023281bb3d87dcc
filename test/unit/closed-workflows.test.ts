import { describe, expect, it } from 'vitest';
import type { PaymentOrder } from '../../db/entities/index.js';
import { CLOSED_LOOK_TTL_MS, ClosedWorkflows } from '../../orders/pay-page/closed-workflows.js';

const order = (id: string) => ({ id }) as PaymentOrder;

describe('ClosedWorkflows', () => {
  it('asks Temporal once per order while its answer is fresh, then again', async () => {
    const asked: string[] = [];
    let closed = false;
    const looks = new ClosedWorkflows((o) => (asked.push(o.id), Promise.resolve(closed)));
    const t0 = 1_000_000;
    expect(await looks.closed(order('a'), t0)).toBe(false);
    closed = true;
    // A waiting page's refreshes within the memory: no more looks, the answer as it was.
    for (let s = 2_000; s < CLOSED_LOOK_TTL_MS; s += 2_000) expect(await looks.closed(order('a'), t0 + s)).toBe(false);
    expect(asked).toEqual(['a']);
    expect(await looks.closed(order('b'), t0)).toBe(true);
    expect(await looks.closed(order('a'), t0 + CLOSED_LOOK_TTL_MS)).toBe(true);
    expect(asked).toEqual(['a', 'b', 'a']);
  });

  it('takes a closed workflow a payment met at once, over a fresher answer that it ran', async () => {
    const looks = new ClosedWorkflows(() => Promise.resolve(false));
    expect(await looks.closed(order('a'), 0)).toBe(false);
    looks.sawClosed(order('a'), 1);
    expect(await looks.closed(order('a'), 2)).toBe(true);
  });

  it('keeps a closed workflow a payment met while a look was under way, over that look', async () => {
    let answer!: (closed: boolean) => void;
    const looks = new ClosedWorkflows(() => new Promise<boolean>((resolve) => (answer = resolve)));
    const looking = looks.closed(order('a'), 0);
    looks.sawClosed(order('a'), 1);
    answer(false);
    expect(await looking).toBe(true);
    expect(await looks.closed(order('a'), 2)).toBe(true);
  });
});
