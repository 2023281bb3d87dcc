// Customers (ARCHITECTURE.md, "Customers"): a tenant's own customerRef once per tenant, changed field
// by field, listed a page at a time, and kept while an order for them still runs.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditEntry, Customer, PaymentInstrument, PaymentOrder } from '../../db/entities/index.js';
import { Migration20261205150000 } from '../../db/migrations/Migration20261205150000.js';
import { eventually } from '../support/eventually.js';
import { holdRow, holdTransaction } from '../support/row-hold.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

let system: TestSystem;
let tenant: TenantFixture;

beforeAll(async () => {
  system = await startSystem();
  tenant = await system.newTenant();
});
afterAll(async () => {
  await system?.close();
});

const order = (orderRef: string, customerRef: string) => ({
  orderRef,
  customerRef,
  instructions: [
    {
      instructionRef: 'premium',
      direction: 'DEBIT',
      amount: '10.00',
      currency: 'EUR',
      country: 'FR',
      openDate: '2031-01-01',
      dueDate: '2031-01-02',
    },
  ],
});

/** A new customer's order, paid by card at once and ended, as the read model has it once projected. */
async function paidOrder(orderRef: string, customerRef: string): Promise<PaymentOrder> {
  expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef } })).status).toBe(201);
  const paid = order(orderRef, customerRef);
  const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
  paid.instructions = paid.instructions.map((i) => ({
    ...i,
    openDate: soon(1),
    dueDate: soon(2),
    financialInstrumentId: 'card_visa_4242',
  }));
  const taken = await tenant.client.request('POST', '/v1/order-management', { body: paid });
  expect(taken.status, JSON.stringify(taken.body)).toBe(202);
  return eventually(
    () => system.orm.em.fork().findOneOrFail(PaymentOrder, { tenantId: tenant.tenantId, orderRef }),
    (o) => o.status === 'COMPLETED' && o.openUntil != null,
    { what: `${orderRef} paid, ended and projected` },
  );
}

/** A card saved on `customer`, kept straight in its rows (its token is not one to pay with). */
function savedCardRow(em: EntityManager, customer: Customer, last4: string, createdAt = new Date()) {
  return em.create(PaymentInstrument, {
    id: randomUUID(),
    tenantId: tenant.tenantId,
    customerId: customer.id,
    appId: 'SANDBOX_CARD',
    paymentMethod: 'CARD',
    tokenCiphertext: 'unused',
    tokenHint: `tok_${last4}`,
    display: { brand: 'visa', last4 },
    status: 'ACTIVE',
    saved: true,
    createdAt,
    updatedAt: createdAt,
  });
}

describe('customers', () => {
  it('sent twice at once, the same, are created once: the second waits for the first and answers it, 200, not 409', async () => {
    const own = await system.newTenant();
    const held = await holdTransaction();
    try {
      const id = randomUUID();
      // The first request, its row written and not yet committed.
      await held.query(
        `insert into customer (id, tenant_id, customer_ref, name, email, locale, metadata, created_at, updated_at)
         values ($1, $2, 'CUS-twice', 'Ada Lovelace', null, null, '{"tier":"gold"}', now(), now())`,
        [id, own.tenantId],
      );
      const second = own.client.request('POST', '/v1/customers', {
        body: { customerRef: 'CUS-twice', name: 'Ada Lovelace', metadata: { tier: 'gold' } },
      });
      await eventually(
        () => held.waiting('%insert into%customer%'),
        (n) => n === 1,
        { what: 'the second create waiting for the first' },
      );
      await held.commit();
      const res = await second;
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ customerRef: 'CUS-twice', name: 'Ada Lovelace' });
      expect(await system.orm.em.fork().count(Customer, { tenantId: own.tenantId, customerRef: 'CUS-twice' })).toBe(1);
    } finally {
      await held.release();
    }
  });

  it('are created once per customerRef, read back, changed field by field and listed a page at a time', async () => {
    const created = await tenant.client.request('POST', '/v1/customers', {
      body: {
        customerRef: 'CUS-1',
        name: '  Ada Lovelace ',
        email: 'ada@example.com',
        locale: 'en-gb',
        metadata: { tier: 'gold' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      customerRef: 'CUS-1',
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      locale: 'en-GB',
      metadata: { tier: 'gold' },
    });

    // Sent again (a retry after a lost answer, in another spelling of the same details): the one stored.
    const resent = await tenant.client.request('POST', '/v1/customers', {
      body: {
        customerRef: 'CUS-1',
        metadata: { tier: 'gold' },
        locale: 'EN-GB',
        email: 'ada@example.com',
        name: 'Ada Lovelace',
      },
    });
    expect(resent).toMatchObject({ status: 200, body: created.body });
    const again = await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-1' } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      code: 'customer_ref_conflict',
      errors: [{ path: 'customerRef', code: 'duplicate' }],
    });

    const got = await tenant.client.request('GET', '/v1/customers/CUS-1');
    expect(got.body).toEqual({ ...created.body, instruments: [] });

    const changed = await tenant.client.request('PATCH', '/v1/customers/CUS-1', {
      body: { email: null, locale: 'fr', metadata: { tier: 'silver', since: '2027' } },
    });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toMatchObject({
      customerRef: 'CUS-1',
      name: 'Ada Lovelace',
      email: null,
      locale: 'fr',
      metadata: { tier: 'silver', since: '2027' },
    });
    expect(Date.parse(changed.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.body.updatedAt));
    const row = await system.orm.em.fork().findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-1' });
    expect(row).toMatchObject({ email: null, locale: 'fr', metadata: { tier: 'silver', since: '2027' } });
    expect(await tenant.client.request('PATCH', '/v1/customers/CUS-1', { body: {} })).toMatchObject({
      status: 400,
      body: { errors: [{ code: 'empty_amendment' }] },
    });

    for (const ref of ['CUS-2', 'CUS-3']) {
      expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef: ref } })).status).toBe(201);
    }
    const first = await tenant.client.request('GET', '/v1/customers?limit=2');
    expect(first.body.items.map((c: any) => c.customerRef)).toEqual(['CUS-3', 'CUS-2']);
    const second = await tenant.client.request('GET', `/v1/customers?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body).toMatchObject({ items: [{ customerRef: 'CUS-1' }], nextCursor: null });

    const audit = await system.orm.em.fork().find(AuditEntry, { tenantId: tenant.tenantId, targetType: 'customer' });
    expect(audit.map((entry) => entry.action).sort()).toEqual([
      'customer.create',
      'customer.create',
      'customer.create',
      'customer.update',
    ]);
  });

  it('lists every saved instrument a page at a time, newest first, though the customer’s record shows the newest 100', async () => {
    expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-saver' } })).status).toBe(
      201,
    );
    const em = system.orm.em.fork();
    const customer = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-saver' });
    const start = Date.now() - 3600_000;
    for (let i = 0; i < 102; i += 1) savedCardRow(em, customer, String(1000 + i), new Date(start + i * 1000));
    await em.flush();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await tenant.client.request('GET', `/v1/customers/CUS-saver/instruments?limit=40${query}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((i: { tokenHint: string }) => i.tokenHint));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 102 }, (_, i) => `tok_${1101 - i}`));
    const record = await tenant.client.request('GET', '/v1/customers/CUS-saver');
    expect(record.body.instruments).toHaveLength(100);
  });

  it('refuses what is not a customer, naming each field, and writes nothing', async () => {
    const bad = await tenant.client.request('POST', '/v1/customers', {
      body: { customerRef: 'has space', email: 'not-an-email', locale: 'not a locale!', name: '   ' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: any) => e.path).sort()).toEqual(['customerRef', 'email', 'locale', 'name']);
    const card = await tenant.client.request('POST', '/v1/customers', {
      body: { customerRef: 'CUS-card', name: 'paid with 4242 4242 4242 4242' },
    });
    expect(card.body).toMatchObject({ status: 400, code: 'card_number_not_allowed', errors: [{ path: 'name' }] });
    const unknownField = await tenant.client.request('PATCH', '/v1/customers/CUS-2', {
      body: { customerRef: 'CUS-9' },
    });
    expect(unknownField.status).toBe(400);
    // A tag that fits, whose canonical form ("sh" is "sr-Latn") would not fit the stored column.
    const longer = await tenant.client.request('POST', '/v1/customers', {
      body: { customerRef: 'CUS-long-locale', locale: 'sh-x-aaaaaaaa-bbbbbbbb-cccccccc-dd' },
    });
    expect(longer.body).toMatchObject({ status: 400, errors: [{ path: 'locale', code: 'invalid_locale' }] });
    expect(
      await system.orm.em.fork().count(Customer, {
        tenantId: tenant.tenantId,
        customerRef: { $in: ['has space', 'CUS-card', 'CUS-9', 'CUS-long-locale'] },
      }),
    ).toBe(0);
    expect((await tenant.client.request('GET', '/v1/customers/CUS-none')).body).toMatchObject({
      status: 404,
      code: 'customer_not_found',
    });
  });

  it('is kept while an order for it still runs, and deleted once it has ended', async () => {
    expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-live' } })).status).toBe(
      201,
    );
    expect(
      (await tenant.client.request('POST', '/v1/order-management', { body: order('ORD-live', 'CUS-live') })).status,
    ).toBe(202);
    const listed = await tenant.client.request('GET', '/v1/order-management?customerRef=CUS-live');
    expect(listed.body.items.map((o: any) => o.orderRef)).toEqual(['ORD-live']);

    const refused = await tenant.client.request('DELETE', '/v1/customers/CUS-live');
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('customer_in_use');
    expect((await tenant.client.request('GET', '/v1/customers/CUS-live')).status).toBe(200);
    // An order that names the customer on its instruction only is for them too.
    expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-inst' } })).status).toBe(
      201,
    );
    const { customerRef: _unnamed, ...named } = order('ORD-inst', 'CUS-inst');
    named.instructions = named.instructions.map((i) => ({ ...i, customerRef: 'CUS-inst' }));
    const byInstruction = await tenant.client.request('POST', '/v1/order-management', { body: named });
    expect(byInstruction.status, JSON.stringify(byInstruction.body)).toBe(202);
    expect(await tenant.client.request('DELETE', '/v1/customers/CUS-inst')).toMatchObject({
      status: 409,
      body: { code: 'customer_in_use' },
    });

    expect((await tenant.client.request('POST', '/v1/order-management/ORD-live/cancel')).status).toBe(200);
    await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/ORD-live')).body.status,
      (status) => status === 'CANCELLED',
      { what: 'the order cancelled' },
    );
    expect((await tenant.client.request('DELETE', '/v1/customers/CUS-live')).status).toBe(204);
    expect((await tenant.client.request('GET', '/v1/customers/CUS-live')).status).toBe(404);
    // The ended order keeps its customerRef: it is the tenant's reference, not a link to the row.
    expect((await tenant.client.request('GET', '/v1/order-management/ORD-live')).body.customerRef).toBe('CUS-live');
  });

  it('is kept while an ended order for it is open for refunds and returns, which may collect again', async () => {
    // Its workflow waits out the card's reversal window: a chargeback or return may still come.
    const row = await paidOrder('ORD-paid', 'CUS-paid');
    expect(row.openUntil!.getTime()).toBeGreaterThan(Date.now() + 30 * 86_400_000);
    expect(await tenant.client.request('DELETE', '/v1/customers/CUS-paid')).toMatchObject({
      status: 409,
      body: { code: 'customer_in_use' },
    });
    // Closing in 15 s: an API host whose clock runs 30 s ahead (this process's stands for it) keeps it too.
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { id: row.id }, { openUntil: new Date(Date.now() + 15_000) });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 30_000 });
    try {
      expect(await tenant.client.request('DELETE', '/v1/customers/CUS-paid')).toMatchObject({
        status: 409,
        body: { code: 'customer_in_use' },
      });
    } finally {
      vi.useRealTimers();
    }
    // Once it has closed, nothing more can come: the customer may go.
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { id: row.id }, { openUntil: new Date(Date.now() - 1000) });
    expect((await tenant.client.request('DELETE', '/v1/customers/CUS-paid')).status).toBe(204);
  });

  it('is kept, once migrated, while an order that ended before open_until was kept is still open', async () => {
    const projected = await paidOrder('ORD-old', 'CUS-old');
    // What a projection before open_until left.
    await system.orm.em.fork().nativeUpdate(PaymentOrder, { id: projected.id }, { openUntil: null });
    const migration = new Migration20261205150000(system.orm.em.getDriver(), system.orm.config);
    await migration.up();
    for (const query of migration.getQueries()) await system.orm.em.getConnection().execute(query as string);
    // Set by the rule its workflow keeps it by, to the same instant.
    const migrated = await system.orm.em.fork().findOneOrFail(PaymentOrder, { id: projected.id });
    expect(migrated.openUntil).toEqual(projected.openUntil);
    expect(await tenant.client.request('DELETE', '/v1/customers/CUS-old')).toMatchObject({
      status: 409,
      body: { code: 'customer_in_use' },
    });
  });

  it('takes a change and a delete of the same customer one after the other: a change after the delete finds none', async () => {
    const created = await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-race' } });
    expect(created.status).toBe(201);
    // The customer's row held, so that the delete comes first and the change waits behind it.
    const held = await holdRow('customer', 'tenant_id = $1 and customer_ref = $2', [tenant.tenantId, 'CUS-race']);
    try {
      const deleted = tenant.client.request('DELETE', '/v1/customers/CUS-race');
      await eventually(
        () => held.waiting(),
        (n) => n === 1,
        { what: 'the delete waiting on the customer' },
      );
      const changed = tenant.client.request('PATCH', '/v1/customers/CUS-race', { body: { name: 'Too late' } });
      await eventually(
        () => held.waiting(),
        (n) => n === 2,
        { what: 'the change waiting behind it' },
      );
      await held.release();
      expect((await deleted).status).toBe(204);
      expect(await changed).toMatchObject({ status: 404, body: { code: 'customer_not_found' } });
    } finally {
      await held.release();
    }
    // Nothing says the gone customer was changed.
    const audited = await system.orm.em
      .fork()
      .count(AuditEntry, { action: 'customer.update', targetId: created.body.customerId });
    expect(audited).toBe(0);
  });

  it('removes an instrument asked twice at once once: the second finds none, and one removal is audited', async () => {
    expect((await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-twice' } })).status).toBe(
      201,
    );
    const em = system.orm.em.fork();
    const customer = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-twice' });
    const instrument = savedCardRow(em, customer, '4242');
    await em.flush();
    // The instrument's row held, so that both removals have read or wait to read it before either ends.
    const held = await holdRow('payment_instrument', 'id = $1', [instrument.id]);
    const path = `/v1/customers/CUS-twice/instruments/${instrument.id}`;
    try {
      const removals = [tenant.client.request('DELETE', path), tenant.client.request('DELETE', path)];
      await eventually(
        () => held.waiting(),
        (n) => n === 2,
        { what: 'both removals waiting on the instrument' },
      );
      await held.release();
      const answers = await Promise.all(removals);
      expect(answers.map((a) => a.status).sort()).toEqual([204, 404]);
      expect(answers.find((a) => a.status === 404)).toMatchObject({ body: { code: 'instrument_not_found' } });
    } finally {
      await held.release();
    }
    const audited = await system.orm.em
      .fork()
      .count(AuditEntry, { action: 'instrument.remove', targetId: instrument.id });
    expect(audited).toBe(1);
    const removed = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: instrument.id });
    expect([removed.status, removed.tokenCiphertext]).toEqual(['REMOVED', null]);
  });

  it('takes an order naming a customer’s instrument and a delete of that customer one after the other', async () => {
    for (const via of ['alone', 'in a batch'] as const) {
      const customerRef = `CUS-racing-${via === 'alone' ? 1 : 2}`;
      const created = await tenant.client.request('POST', '/v1/customers', { body: { customerRef } });
      expect(created.status).toBe(201);
      const em = system.orm.em.fork();
      const instrument = em.create(PaymentInstrument, {
        id: randomUUID(),
        tenantId: tenant.tenantId,
        customerId: created.body.customerId,
        appId: 'SANDBOX_CARD',
        paymentMethod: 'CARD',
        tokenCiphertext: 'unused',
        tokenHint: 'tok_race',
        createdAt: new Date(),
        updatedAt: new Date(),
        display: { brand: 'visa', last4: '4242' },
        status: 'ACTIVE',
        saved: true,
      });
      await em.flush();
      const body = order(`ORD-racing-${via === 'alone' ? 1 : 2}`, customerRef);
      body.instructions = body.instructions.map((i) => ({ ...i, paymentMethod: 'CARD', instrumentId: instrument.id }));
      // The delete takes the customer first; the order naming their card waits behind it.
      const held = await holdRow('customer', 'id = $1', [created.body.customerId]);
      try {
        const deleted = tenant.client.request('DELETE', `/v1/customers/${customerRef}`);
        await eventually(
          () => held.waiting(),
          (n) => n === 1,
          { what: 'the delete waiting on the customer' },
        );
        const taken =
          via === 'alone'
            ? tenant.client.request('POST', '/v1/order-management', { body })
            : tenant.client
                .request('POST', '/v1/order-management/batch', { body: { orders: [body] } })
                .then((res) => ({ status: res.body.results[0].status, body: res.body.results[0].problem }));
        await eventually(
          () => held.waiting(),
          (n) => n === 2,
          { what: `the order (${via}) waiting behind it` },
        );
        await held.release();
        expect((await deleted).status).toBe(204);
        expect(await taken, via).toMatchObject({ status: 400, body: { errors: [{ code: 'instrument_not_found' }] } });
      } finally {
        await held.release();
      }
      expect(
        await system.orm.em.fork().count(PaymentOrder, { tenantId: tenant.tenantId, orderRef: body.orderRef }),
      ).toBe(0);
    }
  });
});
