import type { OrderStatus } from '../../domain/instruction-status.js';
import type { EventInstruction, Instruction } from '../../domain/instruction.js';
import type {
  PaymentOutcome,
  PaymentRequest,
  RefundOutcome,
  RefundRequest,
  StatedAmount,
} from '../../domain/payment-outcome.js';
import type { Refund } from '../../domain/refund.js';
import type { EventType } from '../../domain/webhook.js';

/**
 * Failure types of the payment activities that no retry can cure. The activities throw them as
 * non-retryable ApplicationFailures; the workflow branches on them.
 */
export const APP_NOT_INSTALLED = 'AppNotInstalled';
export const PROVIDER_REJECTED = 'ProviderRejected';
export const APP_CREDENTIALS_UNREADABLE = 'AppCredentialsUnreadable';
/**
 * The provider refused a call under a key an earlier, unanswered call may already have paid with
 * (a 409 "key in use", a look-up it does not offer): what that call did is still unknown.
 */
export const OUTCOME_UNKNOWN = 'OutcomeUnknown';
/**
 * A call the worker did not make: to a tenant-hosted provider while the tenant's account already had
 * its share of the worker's calls under way, or any call whose key's first destination could not be
 * read or kept (the database away). Nothing was sent, and the workflow calls again a little later.
 * Its one detail: whether an earlier attempt of that activity may have reached the provider under
 * the key, which the next call must know.
 */
export const PROVIDER_CALL_PUT_OFF = 'ProviderCallPutOff';

export interface ExecutePaymentInput {
  appId: string;
  request: PaymentRequest;
  idempotencyKey: string;
  /** An earlier call under this key went unanswered: a refusal now does not say nothing moved. */
  keyMayHaveReached?: boolean;
}

export interface PaymentStatusInput {
  appId: string;
  tenantId: string;
  providerRef: string;
  /** What the payment asked for: a settlement stating other money is not believed (absent from older runs). */
  asked?: StatedAmount;
}

export interface PaymentLookupInput {
  appId: string;
  tenantId: string;
  idempotencyKey: string;
  /** As for PaymentStatusInput. */
  asked?: StatedAmount;
}

/** An instruction as a projection carries it: the whole instruction, and its metadata only when that changed. */
export interface ProjectedInstruction extends Instruction {
  metadata?: Record<string, string>;
}

/** Something that happened, as the workflow saw it; the projection adds the metadata and records it once. */
export interface RecordedEvent {
  /** Names it for good: recording it again (a retried projection) changes nothing. */
  eventKey: string;
  type: EventType;
  occurredAt: string;
  /** For instruction events: the instruction as it was then. */
  instruction?: EventInstruction;
  /** For refund events: the refund as it was then. */
  refund?: Refund;
  /** For the order's end: its instructions by status. */
  counts?: Record<string, number>;
}

/** The changes of an order since its last projection: the order row, and the instructions that changed. */
export interface OrderProjection {
  tenantId: string;
  orderId: string;
  orderRef: string;
  /** A bigint as a decimal string; rises with every projection, across workflow runs too. */
  version: string;
  status: OrderStatus;
  /**
   * Until when the ended order stays open for refunds, returns and retries (ISO); null while it runs,
   * or once ended when nothing more can come. Absent from runs of older code.
   */
  openUntil?: string | null;
  instructions: ProjectedInstruction[];
  /** Events since the last projection, recorded in the same transaction, each once. */
  events: RecordedEvent[];
  /** Refunds that changed (absent from runs of older code). */
  refunds?: Refund[];
}

export interface ExecuteRefundInput {
  appId: string;
  request: RefundRequest;
  idempotencyKey: string;
  /** An earlier call under this key went unanswered: a refusal now does not say nothing was refunded. */
  keyMayHaveReached?: boolean;
}

export interface RefundStatusInput {
  appId: string;
  tenantId: string;
  providerRef: string;
  /** What the refund asked for: a success stating other money is not believed (absent from older runs). */
  asked?: StatedAmount;
}

/** The activities a payment-order workflow calls. Workflows import this file for its types only. */
export interface OrderActivities {
  projectOrder(projection: OrderProjection): Promise<void>;
  executePayment(input: ExecutePaymentInput): Promise<PaymentOutcome>;
  getPaymentStatus(input: PaymentStatusInput): Promise<PaymentOutcome>;
  /** The payment the provider made under an idempotency key, or null when it has none. */
  lookupPayment(input: PaymentLookupInput): Promise<PaymentOutcome | null>;
  executeRefund(input: ExecuteRefundInput): Promise<RefundOutcome>;
  getRefundStatus(input: RefundStatusInput): Promise<RefundOutcome>;
}
