// The payment-order workflow's messages: what the API and operators may ask of a running order.
// Importable without the workflow body (the API imports this file, not the workflow).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { InstructionStatus, OrderStatus } from '../../domain/instruction-status.js';
import type { PaymentMethod } from '../../domain/scheme.js';
import type { PlannedInstruction } from '../../domain/order.js';
import type { ProviderResult } from '../../domain/payment-outcome.js';
import type { InstructionAmendment } from '../workflow/instruction-machine.js';

export const PAYMENTS_TASK_QUEUE = 'payments';

/** An instruction as the `orderState` query shows it. */
export interface InstructionView {
  instructionRef: string;
  status: InstructionStatus;
  attempts: number;
  amountMinor: string;
  currency: string;
  openAt: string;
  dueAt: string;
  appId: string;
  paymentMethod: PaymentMethod;
  providerRef?: string;
  voucherCode?: string;
  failureCode?: string;
  nextActionAt?: string;
  settledAt?: string;
}

export interface OrderView {
  orderRef: string;
  status: OrderStatus;
  instructions: InstructionView[];
}

/** How an update answers once it took: whether the read model shows the change yet. */
export interface ChangeAnswer {
  projected: boolean;
}

export const orderStateQuery = defineQuery<OrderView>('orderState');

/** A provider's asynchronous result for a payment it answered PENDING, delivered by the API from a verified callback. */
export const providerResultSignal = defineSignal<[ProviderResult]>('providerResult');

/** Cancels every instruction not yet final. Refused while one is being paid. */
export const cancelOrderUpdate = defineUpdate<ChangeAnswer, []>('cancelOrder');

export interface CancelInstruction {
  instructionRef: string;
}
export const cancelInstructionUpdate = defineUpdate<ChangeAnswer, [CancelInstruction]>('cancelInstruction');

/** The amendment is resolved by the API (dates in the tenant's zone, the scheme's option for a new amount). */
export interface AmendInstruction {
  instructionRef: string;
  amendment: InstructionAmendment;
  metadata?: Record<string, string>;
}
export const amendInstructionUpdate = defineUpdate<ChangeAnswer, [AmendInstruction]>('amendInstruction');

export interface AddInstruction {
  plan: PlannedInstruction;
  metadata: Record<string, string>;
}
export const addInstructionUpdate = defineUpdate<ChangeAnswer, [AddInstruction]>('addInstruction');

/** The customer pays now, in the open window, with one of the instruction's options. */
export interface PayInstruction {
  instructionRef: string;
  appId: string;
  paymentMethod: PaymentMethod;
  financialInstrumentId: string;
}
export const payInstructionUpdate = defineUpdate<ChangeAnswer, [PayInstruction]>('payInstruction');

/**
 * Failure types of refused updates, which the API answers as 409s (or 400 where the request itself
 * is at fault). The message says why.
 */
export const CHANGE_REFUSALS = {
  notFound: 'InstructionNotFound',
  notChangeable: 'InstructionNotChangeable',
  orderNotActive: 'OrderNotActive',
  duplicate: 'InstructionExists',
  tooMany: 'TooManyInstructions',
  invalid: 'ChangeInvalid',
} as const;
