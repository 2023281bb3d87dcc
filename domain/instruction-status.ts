/** Lifecycle of a payment instruction (ARCHITECTURE.md, "Instruction lifecycle"). */
export const INSTRUCTION_STATUSES = [
  'PENDING',
  'OPEN',
  'PROCESSING',
  'LATE',
  'SETTLED',
  'FAILED',
  'CANCELLED',
] as const;
export type InstructionStatus = (typeof INSTRUCTION_STATUSES)[number];

const TRANSITIONS: Record<InstructionStatus, readonly InstructionStatus[]> = {
  PENDING: ['OPEN', 'CANCELLED'],
  OPEN: ['PROCESSING', 'LATE', 'CANCELLED'],
  PROCESSING: ['SETTLED', 'LATE', 'FAILED'],
  // LATE to SETTLED: a payment of unknown outcome that the tenant found settled at the provider.
  LATE: ['PROCESSING', 'SETTLED', 'FAILED', 'CANCELLED'],
  SETTLED: [],
  FAILED: [],
  CANCELLED: [],
};

/** Statuses of an instruction that may still move money: what stops an app being uninstalled. */
export const LIVE_INSTRUCTION_STATUSES = [
  'PENDING',
  'OPEN',
  'PROCESSING',
  'LATE',
] as const satisfies readonly InstructionStatus[];

export function canTransition(from: InstructionStatus, to: InstructionStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(status: InstructionStatus): boolean {
  return TRANSITIONS[status].length === 0;
}

export const ORDER_STATUSES = ['ACTIVE', 'COMPLETED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
