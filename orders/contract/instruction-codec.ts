// Codecs from the instruction's declared shape (domain/instruction.ts) to the forms the workflow
// hands on: what a projection carries, what an event tells, what the query shows, and what the
// provider is asked to pay. Pure, so the workflow uses them as the API and the activities do.
import {
  EVENT_FIELDS,
  pickFields,
  PLAN_FIELDS,
  PROGRESS_FIELDS,
  type EventInstruction,
  type Instruction,
  type InstructionPlan,
  type InstructionProgress,
} from '../../domain/instruction.js';
import type { PaymentRequest } from '../../domain/payment-outcome.js';
import { VIEW_FIELDS, type InstructionView } from './messages.js';

/** The whole instruction, from its plan and where it stands. */
export function instructionOf(
  plan: InstructionPlan,
  progress: InstructionProgress,
  nextActionAt: string | undefined,
): Instruction {
  return { ...plan, ...pickFields(progress, PROGRESS_FIELDS), ...(nextActionAt === undefined ? {} : { nextActionAt }) };
}

/** The plan alone (rows from before schemes were required have no options: none, then). */
export function planOf(instruction: Instruction): InstructionPlan {
  return { ...pickFields(instruction, PLAN_FIELDS), options: instruction.options ?? [] };
}

/** What an event records of the instruction as it is now. */
export function eventInstructionOf(instruction: Instruction): EventInstruction {
  return pickFields(instruction, EVENT_FIELDS);
}

export function instructionViewOf(instruction: Instruction): InstructionView {
  return pickFields(instruction, VIEW_FIELDS);
}

/** The payment the provider is asked to make: nothing of the tenant's configuration, nor of other instructions. */
export function providerRequestOf(
  order: { tenantId: string; orderRef: string },
  plan: InstructionPlan,
): PaymentRequest {
  return {
    tenantId: order.tenantId,
    orderRef: order.orderRef,
    instructionRef: plan.instructionRef,
    direction: plan.direction,
    paymentMethod: plan.paymentMethod,
    amountMinor: plan.amountMinor,
    currency: plan.currency,
    country: plan.country,
    // A stored instrument goes by its id: the payment activity reads its token, which no history holds.
    ...(plan.instrumentId !== undefined
      ? { instrumentId: plan.instrumentId }
      : { financialInstrumentId: plan.financialInstrumentId! }),
  };
}
