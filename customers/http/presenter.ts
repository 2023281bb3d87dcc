import type { Customer } from '../../db/entities/index.js';

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
