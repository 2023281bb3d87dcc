import type { EntityManager } from '@mikro-orm/postgresql';
import type { PaymentInstruction } from '../db/entities/index.js';
import type { PaymentMethod } from '../domain/scheme.js';
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
  /** A saved instrument of the order's customer, or one the customer just entered on the provider's form. */
  instrumentId?: string;
  voucherId?: string;
  /** The amount the customer was shown, in minor units (the page): the payment is refused if it has changed since. */
  amountMinor?: string;
}

/** How an instruction may be paid: the options its scheme offered for it, best first, with their vouchers. */
export async function instructionOptions(em: EntityManager, instruction: PaymentInstruction): Promise<PaymentOption[]> {
  const payment = {
    amountMinor: instruction.amountMinor,
    currency: instruction.currency,
    country: instruction.country,
  };
  const options: PaymentOption[] = [];
  for (const option of instruction.options ?? []) {
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
