// An order's money per currency (ARCHITECTURE.md, "After settlement"): one rule, which the workflow's
// memo and the API's order both show.
import { isAtRest, type InstructionStatus } from './instruction-status.js';
import type { Direction } from './instruction.js';

export interface InstructionMoney {
  direction: Direction;
  currency: string;
  amountMinor: string;
  status: InstructionStatus;
  settledAmountMinor: string;
  refundedAmountMinor: string;
  returnedAmountMinor: string;
}

/** Minor units, as decimal strings. */
export interface CurrencyTotals {
  /** Every collection that settled, each time it did. */
  collected: string;
  refunded: string;
  /** Taken back by returns and chargebacks. */
  returned: string;
  /** Collected, less refunded and returned: what the tenant keeps. */
  netCollected: string;
  paidOut: string;
  /** Still to move: instructions not yet at rest. */
  outstanding: string;
}

export function orderTotals(instructions: readonly InstructionMoney[]): Record<string, CurrencyTotals> {
  const sums = new Map<string, Record<keyof CurrencyTotals, bigint>>();
  for (const i of instructions) {
    const sum = sums.get(i.currency) ?? {
      collected: 0n,
      refunded: 0n,
      returned: 0n,
      netCollected: 0n,
      paidOut: 0n,
      outstanding: 0n,
    };
    const settled = BigInt(i.settledAmountMinor);
    if (i.direction === 'DEBIT') {
      sum.collected += settled;
      sum.refunded += BigInt(i.refundedAmountMinor);
      sum.returned += BigInt(i.returnedAmountMinor);
    } else {
      sum.paidOut += settled;
    }
    if (!isAtRest(i.status)) sum.outstanding += BigInt(i.amountMinor);
    sum.netCollected = sum.collected - sum.refunded - sum.returned;
    sums.set(i.currency, sum);
  }
  return Object.fromEntries(
    [...sums].map(([currency, sum]) => [
      currency,
      Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v.toString()])) as unknown as CurrencyTotals,
    ]),
  );
}
