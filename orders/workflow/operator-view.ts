// What operators see of the order in the Temporal UI (ARCHITECTURE.md, "Temporal design"): its status
// and next action as search attributes, its totals as a memo, each upserted only when it changed.
import { condition, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { countByStatus } from '../../domain/instruction-status.js';
import { orderTotals } from '../../domain/order-totals.js';
import { NextActionAtKey, OrderStatusKey } from '../contract/search-attributes.js';
import type { InstructionMachine } from './instruction-machine.js';
import type { OrderState } from './order-entity.js';
import { PATCHES_BEFORE_START, type OrderPatches } from './order-patches.js';

export class OperatorView {
  /** Something changed since operators were last shown the order (a new run shows it afresh). */
  private stale = true;

  constructor(
    private readonly state: OrderState,
    /** The next moment something happens to an instruction, as the order plans it. */
    private readonly nextActionOf: (machine: InstructionMachine) => string | undefined,
    private readonly patches: OrderPatches,
    /**
     * The read model holds its next projection back for payment answers: the view waits with it
     * (since the start patch), so that a payment sent and answered is shown once, with its answer.
     */
    private readonly readModelWaits: () => boolean,
  ) {}

  markStale(): void {
    this.stale = true;
  }

  upToDate(): boolean {
    return !this.stale;
  }

  async run(): Promise<void> {
    const { state } = this;
    for (;;) {
      await condition(() => this.stale && !(this.patches.allAtStart && this.readModelWaits()));
      this.stale = false;
      const next =
        state.instructions
          .map((m) => this.nextActionOf(m))
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
      // The money per currency, and (since ends are told honestly) the instructions by status.
      const counts = countByStatus(state.instructions.map((m) => m.status));
      const memo = {
        totals: orderTotals(state.instructions.map((m) => ({ ...m, ...m.plan, status: m.status }))),
        ...(state.shown.counted || this.patches.has(PATCHES_BEFORE_START.MEMO_COUNTS)
          ? { instructionCounts: counts }
          : {}),
      };
      if (memo.instructionCounts) state.shown.counted = true;
      const totals = JSON.stringify(memo);
      if (state.shown.totals !== totals) {
        upsertMemo(JSON.parse(totals) as Record<string, unknown>);
        state.shown.totals = totals;
      }
    }
  }
}
