import type { PaymentOrder } from '../../db/entities/index.js';

/** How long the page trusts what Temporal said of an order's workflow: a waiting page looks every 2 s. */
export const CLOSED_LOOK_TTL_MS = 30_000;
/** The most orders remembered; the oldest go first. */
const REMEMBERED = 10_000;

/**
 * Whether an order's workflow has closed, as the payment page asks before each view, remembered a
 * while per order: an open waiting page refreshes every 2 s, and each look is a describe on Temporal.
 * A payment refused for a closed workflow says so at once (`sawClosed`), so the view after it does
 * not wait for the memory to run out.
 */
export class ClosedWorkflows {
  private readonly looks = new Map<string, { closed: boolean; until: number }>();

  constructor(private readonly look: (order: PaymentOrder) => Promise<boolean>) {}

  async closed(order: PaymentOrder, nowMs = Date.now()): Promise<boolean> {
    const known = this.looks.get(order.id);
    if (known && known.until > nowMs) return known.closed;
    const closed = await this.look(order);
    // A payment refused meanwhile for a closed workflow is fresher than a look begun before it.
    const seen = this.looks.get(order.id);
    if (seen?.closed && seen.until > nowMs) return true;
    this.remember(order, closed, nowMs);
    return closed;
  }

  sawClosed(order: PaymentOrder, nowMs = Date.now()): void {
    this.remember(order, true, nowMs);
  }

  private remember(order: PaymentOrder, closed: boolean, nowMs: number): void {
    this.looks.delete(order.id);
    this.looks.set(order.id, { closed, until: nowMs + CLOSED_LOOK_TTL_MS });
    if (this.looks.size > REMEMBERED) this.looks.delete(this.looks.keys().next().value!);
  }
}
