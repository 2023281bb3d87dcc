// Pre-notification (ARCHITECTURE.md, "Business days"): a bank debit's customer is told its notice
// period before the charge date (`instruction.upcoming`, 14 days unless the scheme says otherwise,
// at least 1); a charge date that would break the notice moves to the first one that keeps it, and a
// change of amount or date is told again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

const DAY = 86_400_000;
let system: TestSystem;
let tenant: TenantFixture;
let bankSchemeId: string;

beforeAll(async () => {
  system = await startSystem();
  // Business days off (their test is apart): the notice's day is then the same whatever day this runs.
  tenant = await system.newTenant();
  bankSchemeId = await tenant.bankDebitScheme();
});
afterAll(async () => {
  await system?.close();
});

async function debit(orderRef: string, dueDate: string, schemeId = bankSchemeId) {
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      instructions: [
        {
          instructionRef: 'a',
          direction: 'DEBIT',
          amount: '50.00',
          currency: 'EUR',
          country: 'FR',
          openDate: new Date(Date.now() - 1000).toISOString(),
          dueDate,
          financialInstrumentId: 'bank_ok',
          schemeId,
        },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.instructions[0];
}

const upcoming = async (orderRef: string) =>
  (
    (await tenant.client.request('GET', `/v1/events?type=instruction.upcoming&orderRef=${orderRef}&limit=100`)).body
      .items as { payload: { data: { instruction: Record<string, unknown> } } }[]
  ).map((e) => e.payload.data.instruction);

describe('a bank debit’s pre-notification', () => {
  it('refuses a notice of less than a day for a bank debit', async () => {
    const res = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'no notice',
        rules: [
          { options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1, preNotificationDays: 0 }] },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ path: 'rules[0].options[0].preNotificationDays', code: 'notice_too_short' }),
    ]);
  });

  it('moves a charge date sooner than the notice to the first day that keeps it, and tells the customer at once', async () => {
    // The notice counts from today (the tenant's days are UTC): a run across midnight would move the
    // first day that keeps it between the create and the amendment. Started in the last minute, it
    // waits for the next day.
    const toMidnight = DAY - (Date.now() % DAY);
    if (toMidnight < 60_000) await new Promise((resolve) => setTimeout(resolve, toMidnight + 1_000));
    const before = Date.now();
    const due = new Date(before + 3 * DAY).toISOString();
    const taken = await debit('soon', due);
    // 14 calendar days from today, at the due date's time of day.
    expect(taken.chargeDate).toBe(new Date(Date.parse(due) + 11 * DAY).toISOString());
    const told = await eventually(
      () => upcoming('soon'),
      (items) => items.length === 1,
      { what: 'instruction.upcoming told' },
    );
    expect(told[0]).toMatchObject({ amount: '50.00', chargeDate: taken.chargeDate, dueDate: taken.dueDate });
    // It waits for its charge date now: nothing has been asked of the bank.
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'soon' })).toEqual([]);

    // A new amount inside the window: told again, and charged no sooner than the notice allows from now.
    const amended = await tenant.client.request('PATCH', '/v1/order-management/soon/instructions/a', {
      body: { amount: '60.00' },
    });
    expect(amended.status, JSON.stringify(amended.body)).toBe(200);
    const again = await eventually(
      () => upcoming('soon'),
      (items) => items.length === 2,
      { what: 'instruction.upcoming told again' },
    );
    // Newest first: the new amount, on the same day (still the first that keeps the notice).
    expect(again.map((i) => [i.amount, i.chargeDate])).toEqual([
      ['60.00', taken.chargeDate],
      ['50.00', taken.chargeDate],
    ]);
  });

  it('waits to tell the customer until its notice period before a later charge date, as the scheme sets it', async () => {
    const short = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'three days',
        rules: [
          { options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 1, preNotificationDays: 3 }] },
        ],
      },
    });
    expect(short.status).toBe(201);
    const taken = await debit('later', '2031-03-04', short.body.schemeId);
    expect(taken.chargeDate).toBe('2031-03-04T00:00:00.000Z');
    const open = await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/later')).body.instructions[0],
      (i) => i.status === 'OPEN' && i.nextActionAt !== null,
      { what: 'open, waiting to tell' },
    );
    expect(open.nextActionAt).toBe('2031-03-01T00:00:00.000Z');
    expect(await upcoming('later')).toEqual([]);
  });
});
