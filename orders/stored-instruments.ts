import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { Customer, PaymentInstrument } from '../db/entities/index.js';
import type { PaymentMethod } from '../domain/scheme.js';
import { mandateEnded } from '../domain/instrument.js';
import { Refusal } from '../domain/refusal.js';

/**
 * The stored instrument an instruction, an amendment or a payment names: a saved instrument, still
 * in use and not under an ended mandate, of the customer the instruction is for (its customerRef, or
 * its order's). `path` names the field in a refusal. In a transaction the customer's row is held
 * (FOR SHARE) until it ends: a delete of the customer, which takes the row first
 * (customers/customer-service.ts), either waits for the order naming their instrument, and then
 * counts it, or is seen to have taken the instrument with it.
 */
export async function storedInstrumentFor(
  em: EntityManager,
  tenantId: string,
  customerRef: string | null | undefined,
  instrumentId: string,
  path: string,
): Promise<PaymentInstrument> {
  const customer = customerRef
    ? await em.findOne(
        Customer,
        { tenantId, customerRef },
        em.isInTransaction() ? { lockMode: LockMode.PESSIMISTIC_READ } : {},
      )
    : null;
  const instrument = customer
    ? await em.findOne(PaymentInstrument, {
        id: instrumentId,
        tenantId,
        customerId: customer.id,
        saved: true,
        status: 'ACTIVE',
      })
    : null;
  if (!instrument) {
    throw Refusal.invalid([
      {
        path,
        code: 'instrument_not_found',
        message: customer
          ? `no saved instrument ${instrumentId} of customer ${customerRef}`
          : 'a stored instrument needs the instruction’s customerRef to name a stored customer',
      },
    ]);
  }
  if (mandateEnded(instrument.mandateStatus)) {
    throw Refusal.invalid([
      {
        path,
        code: 'mandate_ended',
        message: `the mandate ${instrument.mandateRef} of instrument ${instrumentId} is ${instrument.mandateStatus}: a debit needs another instrument`,
      },
    ]);
  }
  return instrument;
}

/** Pays with the instrument's own method, or refuses another one named beside it. */
export function methodOf(instrument: PaymentInstrument, named: PaymentMethod | undefined, path: string): PaymentMethod {
  const method = instrument.paymentMethod as PaymentMethod;
  if (named !== undefined && named !== method)
    throw Refusal.invalid([
      { path, code: 'instrument_method_mismatch', message: `the instrument pays by ${method}, not ${named}` },
    ]);
  return method;
}

/**
 * A token is good only with the provider that issued it, for the method it was entered for: the
 * instruction (as its scheme resolved it, or as the payment chooses) must pay through both.
 */
export function checkPaysThrough(
  instrument: PaymentInstrument,
  how: { appId?: string | null; paymentMethod?: string | null },
  path: string,
): void {
  if (how.appId !== instrument.appId || how.paymentMethod !== instrument.paymentMethod)
    throw Refusal.invalid([
      {
        path,
        code: 'instrument_not_offered',
        message: `the instrument pays by ${instrument.paymentMethod} through ${instrument.appId}, and this is paid by ${how.paymentMethod} through ${how.appId}`,
      },
    ]);
}
