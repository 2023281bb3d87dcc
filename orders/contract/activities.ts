import type { InstructionStatus, OrderStatus } from '../../domain/instruction-status.js';
import type { PlannedInstruction } from '../../domain/order.js';
import type { PaymentOutcome, PaymentRequest } from '../../domain/payment-outcome.js';
import type { EventType } from '../../domain/webhook.js';

export interface ExecutePaymentInput {
  appId: string;
  request: PaymentRequest;
  idempotencyKey: string;
}

export interface PaymentStatusInput {
  appId: string;
  tenantId: string;
  providerRef: string;
}

export interface PaymentLookupInput {
  appId: string;
  tenantId: string;
  idempotencyKey: string;
}

/** An instruction as the read model keeps it: its plan, and where it stands. */
export interface ProjectedInstruction extends PlannedInstruction {
  status: InstructionStatus;
  attempts: number;
  providerRef?: string;
  voucherCode?: string;
  failureCode?: string;
  nextActionAt?: string;
  openedAt?: string;
  processingAt?: string;
  lateAt?: string;
  settledAt?: string;
  failedAt?: string;
  cancelledAt?: string;
  /** Only when it changed (an instruction added or amended with metadata). */
  metadata?: Record<string, string>;
}

/** Something that happened, as the workflow saw it; the activity adds the metadata and records it once. */
export interface RecordedEvent {
  /** Names it for good: recording it again (a retried projection) changes nothing. */
  eventKey: string;
  type: EventType;
  occurredAt: string;
  /** For instruction events: the instruction as it was then. */
  instruction?: {
    instructionRef: string;
    direction: PlannedInstruction['direction'];
    amountMinor: string;
    currency: string;
    dueAt: string;
    status: InstructionStatus;
    attempts: number;
    appId: string;
    paymentMethod: PlannedInstruction['paymentMethod'];
    providerRef?: string;
    failureCode?: string;
    voucherCode?: string;
  };
}

/** The changes of an order since its last projection: the order row, and the instructions that changed. */
export interface OrderProjection {
  tenantId: string;
  orderId: string;
  orderRef: string;
  /** A bigint as a decimal string; rises with every projection, across workflow runs too. */
  version: string;
  status: OrderStatus;
  instructions: ProjectedInstruction[];
  /** Events since the last projection, recorded in the same transaction, each once. */
  events: RecordedEvent[];
}

/** The activities a payment-order workflow calls. Workflows import this file for its types only. */
export interface OrderActivities {
  projectOrder(projection: OrderProjection): Promise<void>;
  executePayment(input: ExecutePaymentInput): Promise<PaymentOutcome>;
  getPaymentStatus(input: PaymentStatusInput): Promise<PaymentOutcome>;
  /** The payment the provider made under an idempotency key, or null when it has none. */
  lookupPayment(input: PaymentLookupInput): Promise<PaymentOutcome | null>;
}
