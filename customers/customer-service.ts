import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { Customer, PaymentOrder } from '../db/entities/index.js';
import { databaseNow } from '../db/database-clock.js';
import { Refusal } from '../domain/refusal.js';
import { findPage, type Page, type PageQuery } from '../api/http/pagination.js';

export interface CustomerDetails {
  name?: string | null;
  email?: string | null;
  locale?: string | null;
  metadata?: Record<string, string>;
}

/** A customer created, or the one stored when the same customer was sent again (a retry after a lost answer). */
export interface TakenCustomer {
  sentAgain: boolean;
  customer: Customer;
}

/** A tenant's customers: what the routes call. Every method acts inside the caller's unit of work. */
export class CustomerService {
  async create(
    em: EntityManager,
    tenantId: string,
    input: CustomerDetails & { customerRef: string },
  ): Promise<TakenCustomer> {
    // Taken by one statement that leaves a stored customer be, waiting for one a request is creating at
    // the same time: then read, the same customer sent again (now or before) is the stored one.
    const now = new Date();
    const inserted = await em.getConnection().execute<{ id: string }[]>(
      `insert into customer (id, tenant_id, customer_ref, name, email, locale, metadata, created_at, updated_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?)
       on conflict on constraint customer_tenant_ref_unique do nothing returning id`,
      [
        randomUUID(),
        tenantId,
        input.customerRef,
        input.name ?? null,
        input.email ?? null,
        input.locale ?? null,
        JSON.stringify(input.metadata ?? {}),
        now,
        now,
      ],
      'all',
      em.getTransactionContext(),
    );
    const customer = await em.findOneOrFail(Customer, { tenantId, customerRef: input.customerRef });
    if (inserted.length > 0) return { sentAgain: false, customer };
    if (holdsDetails(customer, input)) return { sentAgain: true, customer };
    throw customerRefConflict(input.customerRef);
  }

  list(em: EntityManager, tenantId: string, page: PageQuery): Promise<Page<Customer>> {
    return findPage(em, Customer, { tenantId }, page, 'id');
  }

  /**
   * The customer; for a change, its row locked until the caller's transaction ends, so that a change
   * and a delete of the same customer go one after the other, the second seeing what the first did.
   */
  async get(
    em: EntityManager,
    tenantId: string,
    customerRef: string,
    lockMode?: LockMode.PESSIMISTIC_WRITE,
  ): Promise<Customer> {
    const customer = await em.findOne(Customer, { tenantId, customerRef }, lockMode ? { lockMode } : {});
    if (!customer) throw new Refusal('not_found', 'customer_not_found', `no customer ${customerRef}`);
    return customer;
  }

  /** Changes what is given; null clears a field, metadata is replaced whole. */
  async update(em: EntityManager, tenantId: string, customerRef: string, changes: CustomerDetails): Promise<Customer> {
    const customer = await this.get(em, tenantId, customerRef, LockMode.PESSIMISTIC_WRITE);
    if (changes.name !== undefined) customer.name = changes.name;
    if (changes.email !== undefined) customer.email = changes.email;
    if (changes.locale !== undefined) customer.locale = changes.locale;
    if (changes.metadata !== undefined) customer.metadata = changes.metadata;
    customer.updatedAt = new Date();
    await em.flush();
    return customer;
  }

  /**
   * Removes a customer nothing live uses: an order still running for it (ACTIVE), or ended but open
   * for refunds and returns, keeps it, since its payments, refunds and returns are the customer's
   * until the order closes: a payment taken back is collected again with the customer's instruments,
   * which go with them. An order is for the customer when it names them, or when one of its
   * instructions does (and pays with their instruments).
   */
  async delete(em: EntityManager, tenantId: string, customerRef: string): Promise<Customer> {
    const customer = await this.get(em, tenantId, customerRef, LockMode.PESSIMISTIC_WRITE);
    // By the database's clock, one for every API host: a host running ahead must not see an order closed early.
    const now = await databaseNow(em);
    const liveOrders = await em.count(PaymentOrder, {
      tenantId,
      $and: [
        { $or: [{ status: 'ACTIVE' }, { openUntil: { $gt: now } }] },
        { $or: [{ customerRef }, { instructions: { tenantId, customerRef } }] },
      ],
    });
    if (liveOrders > 0)
      throw new Refusal(
        'conflict',
        'customer_in_use',
        `${liveOrders} order(s) for this customer are running, or ended but open for refunds and returns; it can be deleted once they have closed`,
      );
    em.remove(customer);
    return customer;
  }
}

function customerRefConflict(customerRef: string): Refusal {
  return new Refusal('conflict', 'customer_ref_conflict', `a customer with customerRef ${customerRef} exists`, [
    { path: 'customerRef', code: 'duplicate', message: 'customerRef is already used by another customer' },
  ]);
}

/** The stored customer holds exactly the details given (what was not given being empty). */
function holdsDetails(stored: Customer, given: CustomerDetails): boolean {
  const sorted = (metadata: Record<string, string>) => JSON.stringify(Object.entries(metadata).sort());
  return (
    stored.name === (given.name ?? null) &&
    stored.email === (given.email ?? null) &&
    stored.locale === (given.locale ?? null) &&
    sorted(stored.metadata) === sorted(given.metadata ?? {})
  );
}
