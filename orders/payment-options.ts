import type { EntityManager } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import type { PaymentMethod } from '../domain/scheme.js';
import { payInstructionUpdate } from './contract/messages.js';
import { ApiError } from '../api/http/problem.js';
import { changeOrder } from './order-service.js';
import { vouchersOffered } from './scheme-resolution.js';

export interface PaymentOption {
  paymentMethod: PaymentMethod;
  appId: string;
  priority: number;
  vouchers?: { voucherId: string; brand: string; name: string }[];
}

export interface PaymentChoice {
  appId: string;
  paymentMethod: PaymentMethod;
  financialInstrumentId?: string;
  voucherId?: string;
}

/** How an instruction may be paid: the options its scheme offered for it, best first, with their vouchers. */
export async function instructionOptions(em: EntityManager, instruction: PaymentInstruction): Promise<PaymentOption[]> {
  const payment = {
    amountMinor: instruction.amountMinor,
    currency: instruction.currency,
    country: instruction.country,
  };
  const options: PaymentOption[] = [];
  for (const option of instruction.resolvedOptions ?? []) {
    const vouchers =
      option.paymentMethod === 'VOUCHER'
        ? (await vouchersOffered(em, instruction.tenantId, option, payment)).map(({ voucherId, brand, name }) => ({
            voucherId,
            brand,
            name,
          }))
        : undefined;
    options.push({
      paymentMethod: option.paymentMethod,
      appId: option.appId,
      priority: option.priority,
      ...(vouchers ? { vouchers } : {}),
    });
  }
  return options;
}

/**
 * The customer pays an instruction now with one of its options: the one path every payment by a
 * customer takes (the API's pay route and the hosted page), as an update the order's workflow
 * validates, so a second payment while one is under way or done is refused: one charge.
 */
export async function payInstruction(
  em: EntityManager,
  temporal: Client,
  order: PaymentOrder,
  instruction: PaymentInstruction,
  choice: PaymentChoice,
  updateId: string | undefined,
): Promise<void> {
  const option = (instruction.resolvedOptions ?? []).find(
    (o) => o.appId === choice.appId && o.paymentMethod === choice.paymentMethod,
  );
  if (!option) {
    throw new ApiError(400, 'validation_failed', '1 field failed validation', [
      {
        path: 'paymentMethod',
        code: 'option_not_offered',
        message: `${choice.paymentMethod} through ${choice.appId} is not an option of this instruction`,
      },
    ]);
  }
  if (option.paymentMethod === 'VOUCHER') {
    const offered = await vouchersOffered(em, order.tenantId, option, {
      amountMinor: instruction.amountMinor,
      currency: instruction.currency,
      country: instruction.country,
    });
    if (!offered.some((v) => v.voucherId === choice.voucherId)) {
      throw new ApiError(400, 'validation_failed', '1 field failed validation', [
        {
          path: 'voucherId',
          code: 'voucher_not_offered',
          message: 'not a voucher this option offers for the instruction',
        },
      ]);
    }
  }
  const financialInstrumentId = (choice.voucherId ?? choice.financialInstrumentId)!;
  await changeOrder(
    temporal,
    order,
    (handle, id) =>
      handle.executeUpdate(payInstructionUpdate, {
        args: [
          {
            instructionRef: instruction.instructionRef,
            appId: option.appId,
            paymentMethod: option.paymentMethod,
            financialInstrumentId,
          },
        ],
        updateId: id,
      }),
    updateId,
  );
}
