import type { InstructionStatus, OrderStatus } from './instruction-status.js';
import type { PaymentMethod } from './scheme.js';

export type Direction = 'DEBIT' | 'CREDIT';

/** One instruction as the workflow plans it. Money travels as a string of minor units: JSON has no bigint. */
export interface PlannedInstruction {
  instructionRef: string;
  direction: Direction;
  amountMinor: string;
  currency: string;
  country: string;
  openAt: string;
  dueAt: string;
  customerRef?: string;
  financialInstrumentId?: string;
  /** The installed app it pays through and the method, as its scheme resolved them. */
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

export interface InstructionState {
  instructionRef: string;
  status: InstructionStatus;
  attempts: number;
  appId?: string;
  providerRef?: string;
  voucherCode?: string;
  failureCode?: string;
  nextActionAt?: string;
  openedAt?: string;
  processingAt?: string;
  settledAt?: string;
  failedAt?: string;
  lateAt?: string;
}

/** What the workflow projects to the read model. */
export interface OrderSnapshot {
  tenantId: string;
  orderId: string;
  orderRef: string;
  status: OrderStatus;
  /** A bigint as a decimal string; rises with every change, across workflow runs too. */
  version: string;
  instructions: InstructionState[];
}

export function orderWorkflowId(tenantId: string, orderRef: string): string {
  return `order/${tenantId}/${orderRef}`;
}

/** Stable per attempt, so a retried activity or a replayed call reaches the provider with the same key. */
export function paymentIdempotencyKey(tenantId: string, orderRef: string, instructionRef: string, attempt: number): string {
  return `${tenantId}:${orderRef}:${instructionRef}:${attempt}`;
}
