import type { Customer, PaymentInstrument } from '../../db/entities/index.js';

export function presentInstrument(instrument: PaymentInstrument) {
  return {
    instrumentId: instrument.id,
    appId: instrument.appId,
    paymentMethod: instrument.paymentMethod as 'CARD' | 'BANK_DEBIT' | 'BANK_TRANSFER',
    tokenHint: instrument.tokenHint,
    display: instrument.display,
    status: instrument.status,
    mandate:
      instrument.mandateRef && instrument.mandateStatus && instrument.mandateSignedAt
        ? {
            mandateRef: instrument.mandateRef,
            status: instrument.mandateStatus,
            signedAt: instrument.mandateSignedAt.toISOString(),
          }
        : null,
    createdAt: instrument.createdAt.toISOString(),
  };
}

export function presentCustomer(customer: Customer) {
  return {
    customerId: customer.id,
    customerRef: customer.customerRef,
    name: customer.name,
    email: customer.email,
    locale: customer.locale,
    metadata: customer.metadata,
    createdAt: customer.createdAt.toISOString(),
    updatedAt: customer.updatedAt.toISOString(),
  };
}

export function presentCustomerWithInstruments(customer: Customer, instruments: PaymentInstrument[]) {
  return { ...presentCustomer(customer), instruments: instruments.map(presentInstrument) };
}
