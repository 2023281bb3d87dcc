import { EntitySchema } from '@mikro-orm/core';

/**
 * A tenant's customer: the person or business its orders collect from or pay out to, known by the
 * tenant's own `customerRef`. Orders name a customer by that ref (as they did before customers
 * existed, so an order's customerRef need not name a stored customer).
 */
export class Customer {
  id!: string;
  tenantId!: string;
  customerRef!: string;
  name: string | null = null;
  email: string | null = null;
  /** A BCP 47 language tag, canonicalised (`en-GB`), for what the customer is sent and shown. */
  locale: string | null = null;
  metadata: Record<string, string> = {};
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const CustomerSchema = new EntitySchema<Customer>({
  class: Customer,
  tableName: 'customer',
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'] }],
  uniques: [{ name: 'customer_tenant_ref_unique', properties: ['tenantId', 'customerRef'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: {
      kind: 'm:1',
      entity: 'Tenant',
      mapToPk: true,
      fieldName: 'tenant_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    customerRef: { type: 'string', length: 50 },
    name: { type: 'string', length: 200, nullable: true },
    email: { type: 'string', length: 254, nullable: true },
    locale: { type: 'string', length: 35, nullable: true },
    metadata: { type: 'json' },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
