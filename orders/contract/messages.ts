// The payment-order workflow's messages: how it is started, and what the API and operators may ask
// of a running order. Importable without the workflow body.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Instruction, InstructionPlan } from '../../domain/instruction.js';
import type { OrderStatus } from '../../domain/instruction-status.js';
import type { ProviderResult, RefundResult } from '../../domain/payment-outcome.js';
import type { RefundStatus } from '../../domain/refund.js';
import type { PaymentMethod } from '../../domain/scheme.js';

/** Everything a payment-order workflow needs; rebuilt from the database if the API crashed before starting it. */
export interface PaymentOrderInput {
  tenantId: string;
  orderId: string;
  orderRef: string;
  customerRef?: string;
  /** Delay before each retry of a declined-but-retryable collection; its length is the number of retries. */
  dunningDelaysMs?: number[];
  /** What a returned payment does: collected again (retryable codes) or failed. Absent: RECOLLECT. */
  returnsPolicy?: 'RECOLLECT' | 'FAIL';
  /** Days a LATE instruction with nothing planned waits before it fails `expired`. Absent: 30. */
  arrearsExpiryDays?: number;
  /** Per app, the days after a collection settles during which it may still be refunded or taken back. */
  reversalWindowDays?: Record<string, number>;
  instructions: InstructionPlan[];
}

/** What the `orderState` query shows of each instruction. */
export const VIEW_FIELDS = [
  'instructionRef',
  'status',
  'attempts',
  'amountMinor',
  'currency',
  'openAt',
  'dueAt',
  'chargeAt',
  'appId',
  'paymentMethod',
  'providerRef',
  'voucherCode',
  'failureCode',
  'nextActionAt',
  'settledAt',
] as const satisfies readonly (keyof Instruction)[];

export type InstructionView = Pick<Instruction, (typeof VIEW_FIELDS)[number]>;

export interface OrderView {
  orderRef: string;
  status: OrderStatus;
  instructions: InstructionView[];
  /**
   * Every refund asked for, by instruction (absent from runs of older code), the app it goes through
   * and the money it asks for (each absent from a worker of before it was shown).
   */
  refunds?: {
    instructionRef: string;
    refundId: string;
    appId?: string;
    amountMinor?: string;
    currency?: string;
    status: RefundStatus;
    providerRef?: string;
  }[];
}

/** How an update answers once it took: whether the read model shows the change yet. */
export interface ChangeAnswer {
  projected: boolean;
}

export const orderStateQuery = defineQuery<OrderView>('orderState');

/**
 * A provider's asynchronous result for a payment it answered PENDING, delivered by the API from a
 * verified callback, with the app whose callback it was (absent in signals sent before apps were
 * checked): only the instruction's own app may settle or fail its payment.
 */
export type SignalledResult = ProviderResult & { appId?: string };
export const providerResultSignal = defineSignal<[SignalledResult]>('providerResult');

/**
 * A return or chargeback verified only by a callback secret the tenant replaced since
 * (`Reversal.underReplacedSecret`), handed on as an update, not as a signal: a worker of the code
 * before this update does not know it and refuses it, writing nothing, so the provider is told to send
 * it again (and a worker hands the stored row on again later). As a signal, a worker of the code
 * before the mark was read (the patch `return-under-replaced-secret-not-recollected`) would take it
 * and collect the payment again.
 */
export const replacedSecretReturnUpdate = defineUpdate<void, [SignalledResult]>('replacedSecretReturn');

/** A provider's result for a refund it answered PENDING, from a verified callback, with the app whose callback it was. */
export type SignalledRefundResult = RefundResult & { providerRef: string; appId: string };
export const refundResultSignal = defineSignal<[SignalledRefundResult]>('refundResult');

/** A stored instrument's mandate moved: ACTIVE (debits waiting for it go), or ended (they wait for another instrument). */
export interface MandateChanged {
  instrumentId: string;
  status: 'ACTIVE' | 'CANCELLED' | 'EXPIRED' | 'PENDING';
}
export const mandateChangedSignal = defineSignal<[MandateChanged]>('mandateChanged');

/** Cancels every instruction not yet final. Refused while one is being paid. */
export const cancelOrderUpdate = defineUpdate<ChangeAnswer, []>('cancelOrder');

export interface CancelInstruction {
  instructionRef: string;
}
export const cancelInstructionUpdate = defineUpdate<ChangeAnswer, [CancelInstruction]>('cancelInstruction');

/** What an amendment may change: the payment itself, its dates, and how it is paid. */
export type InstructionAmendment = Partial<
  Pick<
    InstructionPlan,
    | 'amountMinor'
    | 'openAt'
    | 'dueAt'
    | 'chargeAt'
    | 'financialInstrumentId'
    | 'instrumentId'
    | 'schemeId'
    | 'schemeVersion'
    | 'options'
    | 'appId'
    | 'paymentMethod'
  >
>;

/** The amendment is resolved by the order service (dates in the tenant's zone, the scheme's option for a new amount). */
export interface AmendInstruction {
  instructionRef: string;
  amendment: InstructionAmendment;
  metadata?: Record<string, string>;
}
export const amendInstructionUpdate = defineUpdate<ChangeAnswer, [AmendInstruction]>('amendInstruction');

export interface AddInstruction {
  plan: InstructionPlan;
  metadata: Record<string, string>;
}
export const addInstructionUpdate = defineUpdate<ChangeAnswer, [AddInstruction]>('addInstruction');

/**
 * A tenant admin ends a payment of unknown outcome with what the provider told them: it settled,
 * or nothing was paid (and the key is free for a new payment).
 */
export interface ResolveInstruction {
  instructionRef: string;
  outcome: 'SETTLED' | 'NOT_PAID';
  providerRef?: string;
}
export const resolveInstructionUpdate = defineUpdate<ChangeAnswer, [ResolveInstruction]>('resolveInstruction');

/** The customer pays now, in the open window, with one of the instruction's options. */
export interface PayInstruction {
  instructionRef: string;
  appId: string;
  paymentMethod: PaymentMethod;
  /** One of the two: an instrument's id, or a stored instrument of the order's customer. */
  financialInstrumentId?: string;
  instrumentId?: string;
  /**
   * The amount the customer was shown and agreed to pay, in minor units: refused if the instruction's
   * is now another (amended since the page was opened). Absent from the tenant's own pay route.
   */
  amountMinor?: string;
}
export const payInstructionUpdate = defineUpdate<ChangeAnswer, [PayInstruction]>('payInstruction');

/** A refund of a SETTLED collection, in full or in part; the API chose its id. */
export interface CreateRefund {
  instructionRef: string;
  refundId: string;
  amountMinor: string;
  reason?: string;
}
export const createRefundUpdate = defineUpdate<ChangeAnswer, [CreateRefund]>('createRefund');

/**
 * A tenant admin's word on a refund of unknown outcome (its call unanswered, or refused under a key
 * that may have refunded): SUCCEEDED, with the provider's reference of the refund, or FAILED.
 */
export interface ResolveRefund {
  instructionRef: string;
  refundId: string;
  outcome: 'SUCCEEDED' | 'FAILED';
  providerRef?: string;
}
export const resolveRefundUpdate = defineUpdate<ChangeAnswer, [ResolveRefund]>('resolveRefund');

/** A FAILED instruction tried again, with a new idempotency key: on another instrument, at another date. */
export interface RetryInstruction {
  instructionRef: string;
  financialInstrumentId?: string;
  instrumentId?: string;
  dueAt?: string;
  /** The business day of `dueAt`. */
  chargeAt?: string;
}
export const retryInstructionUpdate = defineUpdate<ChangeAnswer, [RetryInstruction]>('retryInstruction');
