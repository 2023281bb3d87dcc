// What operators see of the order in the Temporal UI (ARCHITECTURE.md, "Temporal design"): its status
// and next action as search attributes, its totals as a memo, each upserted only when it changed.
import { condition, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { isAtRest } from '../../domain/instruction-status.js';
import { NextActionAtKey, OrderStatusKey } from '../contract/search-attributes.js';
import { nextActionAt, type InstructionMachine } from './instruction-machine.js';
import type { OrderState } from './order-entity.js';

export class OperatorView {
  /** Something changed since operators were last shown the order (a new run shows it afresh). */
  private stale = true;

  constructor(private readonly state: OrderState) {}

  markStale(): void {
    this.stale = true;
  }

  upToDate(): boolean {
    return !this.stale;
  }

  async run(): Promise<void> {
    const { state } = this;
    for (;;) {
      await condition(() => this.stale);
      this.stale = false;
      const next =
        state.instructions
          .map(nextActionAt)
          .filter((at): at is string => at !== undefined)
          .sort()[0] ?? null;
      if (state.shown.status !== state.status || state.shown.nextActionAt !== next) {
        upsertSearchAttributes([
          { key: OrderStatusKey, value: state.status },
          { key: NextActionAtKey, value: next ? new Date(next) : null },
        ]);
        state.shown.status = state.status;
        state.shown.nextActionAt = next;
      }
      const totals = JSON.stringify(totalsOf(state.instructions));
      if (state.shown.totals !== totals) {
        upsertMemo({ totals: JSON.parse(totals) as unknown });
        state.shown.totals = totals;
      }
    }
  }
}

/** Money per currency, in minor units: collected and paid out so far, and still to move. */
function totalsOf(
  instructions: InstructionMachine[],
): Record<string, { collected: string; paidOut: string; outstanding: string }> {
  const sums = new Map<string, { collected: bigint; paidOut: bigint; outstanding: bigint }>();
  for (const { plan, status } of instructions) {
    const sum = sums.get(plan.currency) ?? { collected: 0n, paidOut: 0n, outstanding: 0n };
    const amount = BigInt(plan.amountMinor);
    if (status === 'SETTLED') sum[plan.direction === 'DEBIT' ? 'collected' : 'paidOut'] += amount;
    else if (!isAtRest(status)) sum.outstanding += amount;
    sums.set(plan.currency, sum);
  }
  return Object.fromEntries(
    [...sums].map(([currency, sum]) => [
      currency,
      { collected: sum.collected.toString(), paidOut: sum.paidOut.toString(), outstanding: sum.outstanding.toString() },
    ]),
  );
}
