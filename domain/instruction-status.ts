/** Lifecycle of a payment instruction (ARCHITECTURE.md, "Instruction lifecycle"). */
export const INSTRUCTION_STATUSES = [
  'PENDING',
  'OPEN',
  'PROCESSING',
  'LATE',
  'SETTLED',
  'RETURNED',
  'FAILED',
  'CANCELLED',
] as const;
export type InstructionStatus = (typeof INSTRUCTION_STATUSES)[number];

const TRANSITIONS: Record<InstructionStatus, readonly InstructionStatus[]> = {
  PENDING: ['OPEN', 'CANCELLED'],
  OPEN: ['PROCESSING', 'LATE', 'CANCELLED'],
  PROCESSING: ['SETTLED', 'LATE', 'FAILED'],
  // LATE to SETTLED: a payment of unknown outcome that the tenant found settled at the provider.
  // LATE to FAILED: a decline with no retry left, or arrears that expired.
  LATE: ['PROCESSING', 'SETTLED', 'FAILED', 'CANCELLED'],
  // Money taken back after it settled: a bank debit returned, a card charged back.
  SETTLED: ['RETURNED'],
  // Collected again on the dunning schedule (LATE), or given up (FAILED), by the tenant's returns policy.
  RETURNED: ['LATE', 'FAILED'],
  // Retried by the tenant: open again, with a new idempotency key.
  FAILED: ['OPEN'],
  CANCELLED: [],
};

/** Statuses of an instruction that may still move money: what stops an app being uninstalled. */
export const LIVE_INSTRUCTION_STATUSES = [
  'PENDING',
  'OPEN',
  'PROCESSING',
  'LATE',
  'RETURNED',
] as const satisfies readonly InstructionStatus[];

export function canTransition(from: InstructionStatus, to: InstructionStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Nothing is scheduled for it: it settled, failed or was cancelled. Only something from outside moves
 * it on (a return of a settled payment, a retry of a failed one); a cancelled one never moves again.
 */
export function isAtRest(status: InstructionStatus): boolean {
  return status === 'SETTLED' || status === 'FAILED' || status === 'CANCELLED';
}

export const ORDER_STATUSES = ['ACTIVE', 'COMPLETED', 'COMPLETED_WITH_FAILURES', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * How an order stands, from its instructions (ARCHITECTURE.md, "Instruction lifecycle"): ACTIVE while
 * one may still move money; once none may, CANCELLED if it was cancelled (or every instruction was),
 * COMPLETED if every instruction settled or was cancelled, and COMPLETED_WITH_FAILURES otherwise.
 */
export function orderStatusOf(statuses: readonly InstructionStatus[], cancelRequested: boolean): OrderStatus {
  if (!statuses.every(isAtRest)) return 'ACTIVE';
  if (cancelRequested || statuses.every((s) => s === 'CANCELLED')) return 'CANCELLED';
  return statuses.every((s) => s === 'SETTLED' || s === 'CANCELLED') ? 'COMPLETED' : 'COMPLETED_WITH_FAILURES';
}

/** How many instructions are in each status (the order's end event and its memo show it). */
export function countByStatus(statuses: readonly InstructionStatus[]): Partial<Record<InstructionStatus, number>> {
  const counts: Partial<Record<InstructionStatus, number>> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}
