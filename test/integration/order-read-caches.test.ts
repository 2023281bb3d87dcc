import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { Tenant } from '../../db/entities/index.js';
import { eventually } from '../support/eventually.js';
import { startSystem, type TestSystem } from '../support/system.js';

/*
 * Taking an order reads its tenant's settings and current schemes, which each API process keeps
 * while it hears row changes (db/row-changes.ts). A change made through one API, or in the database
 * by no API at all, must reach the orders every process takes next.
 */
let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});

afterAll(async () => {
  await system?.close();
});

/** A card payment due on a calendar date: the tenant's time zone says which instant that is. */
const dueOnADate = {
  direction: 'DEBIT',
  amount: '5.00',
  currency: 'EUR',
  country: 'FR',
  openDate: '2030-01-01',
  dueDate: '2030-01-08',
  financialInstrumentId: 'card_ok',
};

// An embedded PGlite serves one session at a time: no API listens there, none caches.
it.skipIf(inject('databasePoolSize') === 1)(
  "takes each order with its tenant's latest time zone and schemes, in every API process",
  async () => {
    const second = await system.startListeningApi();
    try {
      const tenant = await system.newTenant();
      const { publicKey, privateKey, tenantId } = tenant;
      const apis = [
        tenant.client,
        new PaymentSchedulerClient({ baseUrl: second.url, publicKey, privateKey, tenantId }),
      ];
      let taken = 0;
      const take = async (api: PaymentSchedulerClient) => {
        const res = await api.request<{ instructions: { dueDate: string; schemeId: string }[] }>(
          'POST',
          '/v1/order-management',
          { body: { orderRef: `cached-${taken++}`, instructions: [{ instructionRef: 'i', ...dueOnADate }] } },
        );
        expect(res.status).toBe(202);
        return res.body.instructions[0];
      };
      const inEvery = async <T>(
        what: string,
        of: (instruction: { dueDate: string; schemeId: string }) => T,
        expected: T,
      ) => {
        expect(of(await take(apis[0]))).toEqual(expected);
        await eventually(
          async () => of(await take(apis[1])),
          (value) => value === expected,
          {
            what,
            timeoutMs: 5_000,
            intervalMs: 20,
          },
        );
      };

      // Each process reads the tenant and its schemes once, and keeps them.
      const first = await take(apis[0]);
      expect(await take(apis[1])).toMatchObject({ dueDate: first.dueDate, schemeId: first.schemeId });

      // Through the first API.
      const patched = await tenant.account.request('PATCH', `/v1/account/tenants/${tenantId}`, {
        body: { timeZone: 'Pacific/Auckland' },
      });
      expect(patched.status).toBe(200);
      const inAuckland = (await take(apis[0])).dueDate;
      expect(inAuckland).not.toBe(first.dueDate);
      await inEvery('the new time zone in both APIs', (i) => i.dueDate, inAuckland);

      const scheme = await tenant.client.request<{ schemeId: string }>('POST', '/v1/schemes/collect', {
        body: {
          name: 'cards, again',
          isDefault: true,
          rules: [{ options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] }],
        },
      });
      expect(scheme.status).toBe(201);
      expect(scheme.body.schemeId).not.toBe(first.schemeId);
      await inEvery('the new default scheme in both APIs', (i) => i.schemeId, scheme.body.schemeId);

      // Straight in the database, by no API at all.
      await system.orm.em.fork().nativeUpdate(Tenant, { id: tenantId }, { timeZone: 'UTC' });
      await eventually(
        async () => [(await take(apis[0])).dueDate, (await take(apis[1])).dueDate],
        ([here, there]) => here === first.dueDate && there === first.dueDate,
        { what: 'the time zone changed in the database, in both APIs', timeoutMs: 5_000, intervalMs: 20 },
      );
    } finally {
      await second.close();
    }
  },
);
