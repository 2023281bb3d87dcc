import { recordAudit } from '../../api/audit/record-audit.js';
import { PageQuerySchema } from '../../api/http/common-schemas.js';
import type { RouteTable } from '../../api/http/route-table.js';
import type { CustomerService } from '../customer-service.js';
import type { InstrumentStore } from '../instrument-store.js';
import { presentCustomer, presentCustomerWithInstruments, presentInstrument } from './presenter.js';
import {
  CreateCustomerSchema,
  CustomerListSchema,
  CustomerRefParamsSchema,
  CustomerSchema,
  CustomerWithInstrumentsSchema,
  InstrumentListSchema,
  InstrumentParamsSchema,
  UpdateCustomerSchema,
} from './schemas.js';

/** A tenant's customers (ARCHITECTURE.md, "Customers"). */
export function addCustomerRoutes(routes: RouteTable, customers: CustomerService, instruments: InstrumentStore): void {
  routes.add({
    method: 'post',
    path: '/customers',
    scope: 'tenant',
    roles: ['tenant-customer-write'],
    summary: 'Create a customer',
    description:
      'Orders name a customer by its customerRef. The same customer sent again is answered 200 with the one stored; another under its customerRef is 409.',
    tags: ['Customers'],
    body: CreateCustomerSchema,
    responses: {
      201: { description: 'The customer', schema: CustomerSchema },
      200: { description: 'The same customer sent again: the one stored, unchanged', schema: CustomerSchema },
    },
    problems: [409],
    handler: async ({ body, em, context: { tenantId, principal } }) => {
      const { sentAgain, customer } = await customers.create(em, tenantId, body);
      if (sentAgain) return { status: 200, body: presentCustomer(customer) };
      recordAudit(em, principal, {
        action: 'customer.create',
        targetType: 'customer',
        targetId: customer.id,
        details: { customerRef: customer.customerRef },
      });
      return { status: 201, body: presentCustomer(customer) };
    },
  });

  routes.add({
    method: 'get',
    path: '/customers',
    scope: 'tenant',
    roles: ['tenant-customer-read'],
    summary: 'List customers, newest first',
    tags: ['Customers'],
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of customers', schema: CustomerListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await customers.list(em, tenantId, query);
      return { status: 200, body: { items: page.items.map(presentCustomer), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/customers/:customerRef',
    scope: 'tenant',
    roles: ['tenant-customer-read'],
    summary: 'Get a customer, with its saved instruments',
    description: 'Their orders: GET /order-management?customerRef=….',
    tags: ['Customers'],
    params: CustomerRefParamsSchema,
    responses: { 200: { description: 'The customer', schema: CustomerWithInstrumentsSchema } },
    // The customer and its instruments from one view.
    transactional: 'snapshot',
    handler: async ({ params, em, context: { tenantId } }) => {
      const customer = await customers.get(em, tenantId, params.customerRef);
      return { status: 200, body: presentCustomerWithInstruments(customer, await instruments.saved(em, customer)) };
    },
  });

  routes.add({
    method: 'get',
    path: '/customers/:customerRef/instruments',
    scope: 'tenant',
    roles: ['tenant-customer-read'],
    summary: 'List a customer’s saved instruments',
    description:
      'Cards and bank accounts the customer saved on the payment page, as their providers’ tokens: never a number. ' +
      'An instruction, an amendment or a payment names one by instrumentId.',
    tags: ['Customers'],
    params: CustomerRefParamsSchema,
    query: PageQuerySchema,
    responses: { 200: { description: 'Its instruments, newest first', schema: InstrumentListSchema } },
    handler: async ({ params, query, em, context: { tenantId } }) => {
      const customer = await customers.get(em, tenantId, params.customerRef);
      const page = await instruments.savedPage(em, customer, query);
      return { status: 200, body: { items: page.items.map(presentInstrument), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'delete',
    path: '/customers/:customerRef/instruments/:instrumentId',
    scope: 'tenant',
    roles: ['tenant-customer-write'],
    summary: 'Remove a saved instrument',
    description:
      'It is offered no more, and an instruction that names it goes LATE (`provider_rejected:instrument_removed`) when it falls due.',
    tags: ['Customers'],
    params: InstrumentParamsSchema,
    responses: { 204: { description: 'Removed' } },
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      const customer = await customers.get(em, tenantId, params.customerRef);
      const instrument = await instruments.remove(em, customer, params.instrumentId);
      recordAudit(em, principal, {
        action: 'instrument.remove',
        targetType: 'instrument',
        targetId: instrument.id,
        details: { customerRef: customer.customerRef },
      });
      return { status: 204 };
    },
  });

  routes.add({
    method: 'patch',
    path: '/customers/:customerRef',
    scope: 'tenant',
    roles: ['tenant-customer-write'],
    summary: 'Change a customer',
    description: 'Only the fields given change; null clears one. The customerRef cannot change.',
    tags: ['Customers'],
    params: CustomerRefParamsSchema,
    body: UpdateCustomerSchema,
    responses: { 200: { description: 'The customer', schema: CustomerSchema } },
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const customer = await customers.update(em, tenantId, params.customerRef, body);
      recordAudit(em, principal, {
        action: 'customer.update',
        targetType: 'customer',
        targetId: customer.id,
        details: { customerRef: customer.customerRef, fields: Object.keys(body) },
      });
      return { status: 200, body: presentCustomer(customer) };
    },
  });

  routes.add({
    method: 'delete',
    path: '/customers/:customerRef',
    scope: 'tenant',
    roles: ['tenant-customer-write'],
    summary: 'Delete a customer',
    description:
      'Refused (409 customer_in_use) while an order for the customer is running, or has ended but is still open for refunds and returns.',
    tags: ['Customers'],
    params: CustomerRefParamsSchema,
    responses: { 204: { description: 'Deleted' } },
    problems: [409],
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      const customer = await customers.delete(em, tenantId, params.customerRef);
      recordAudit(em, principal, {
        action: 'customer.delete',
        targetType: 'customer',
        targetId: customer.id,
        details: { customerRef: customer.customerRef },
      });
      return { status: 204 };
    },
  });
}
