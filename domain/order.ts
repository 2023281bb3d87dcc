import type { PaymentMethod, ResolvedOption } from './scheme.js';

export type Direction = 'DEBIT' | 'CREDIT';

/** One instruction as the workflow plans it. Money travels as a string of minor units: JSON has no bigint. */
export interface PlannedInstruction {
  /** Its row in the read model (the workflow inserts the rows of instructions added later). */
  instructionId: string;
  /** Its place in the order, as submitted or added. */
  position: number;
  instructionRef: string;
  direction: Direction;
  amountMinor: string;
  currency: string;
  country: string;
  openAt: string;
  dueAt: string;
  customerRef?: string;
  financialInstrumentId?: string;
  /** The scheme version it was resolved with, the options it offered, and the one chosen. */
  schemeId: string;
  schemeVersion: number;
  options: ResolvedOption[];
  appId: string;
  paymentMethod: PaymentMethod;
}

/** Everything a payment-order workflow needs; rebuilt from the database if the API crashed before starting it. */
export interface PaymentOrderInput {
  tenantId: string;
  orderId: string;
  orderRef: string;
  customerRef?: string;
  /** Delay before each retry of a declined-but-retryable collection; its length is the number of retries. */
  dunningDelaysMs?: number[];
  instructions: PlannedInstruction[];
}

export function orderWorkflowId(tenantId: string, orderRef: string): string {
  return `order/${tenantId}/${orderRef}`;
}

/** Stable per attempt, so a retried activity or a replayed call reaches the provider with the same key. */
export function paymentIdempotencyKey(
  tenantId: string,
  orderRef: string,
  instructionRef: string,
  attempt: number,
): string {
  return `${tenantId}:${orderRef}:${instructionRef}:${attempt}`;
}
