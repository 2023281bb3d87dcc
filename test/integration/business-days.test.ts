// Business days (ARCHITECTURE.md, "Business days"): a bank payment due on a weekend or a public holiday
// of its country is charged on the day the tenant's rule gives, at the same local time; the API shows
// the due date asked and the charge date used, and a change of date computes it again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

let system: TestSystem;
let tenant: TenantFixture;
let bankSchemeId: string;

beforeAll(async () => {
  system = await startSystem();
  // London: date-only dates are midnight there (BST in summer, so 23:00Z the day before).
  tenant = await system.newTenant({ tenant: { timeZone: 'Europe/London', businessDayRule: 'FOLLOWING' } });
  bankSchemeId = await tenant.bankDebitScheme();
});
afterAll(async () => {
  await system?.close();
});

async function instructionOf(orderRef: string, instruction: Record<string, unknown>) {
  const res = await tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      instructions: [
        {
          instructionRef: 'a',
          direction: 'DEBIT',
          amount: '10.00',
          currency: 'GBP',
          country: 'GB',
          openDate: '2031-01-01',
          financialInstrumentId: 'GB-debtor-1',
          ...instruction,
        },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.instructions[0];
}

const setRule = async (businessDayRule: string) =>
  expect(
    (
      await tenant.account.request('PATCH', `/v1/account/tenants/${tenant.tenantId}`, {
        body: { businessDayRule },
      })
    ).body.businessDayRule,
  ).toBe(businessDayRule);

describe('a bank debit due on a day banks are closed', () => {
  it('is charged on the next business day: Good Friday and Easter Monday skipped, at midnight London time', async () => {
    // 2031-04-11 is Good Friday, 2031-04-14 Easter Monday: charged Tuesday 15th, 00:00 BST.
    const debit = await instructionOf('good-friday', { dueDate: '2031-04-11', schemeId: bankSchemeId });
    expect(debit).toMatchObject({
      paymentMethod: 'BANK_DEBIT',
      dueDate: '2031-04-10T23:00:00.000Z',
      chargeDate: '2031-04-14T23:00:00.000Z',
    });
    // A card is paid any day: its charge date is its due date.
    const card = await instructionOf('good-friday-card', { dueDate: '2031-04-11' });
    expect(card).toMatchObject({ paymentMethod: 'CARD', chargeDate: card.dueDate });
  });

  it('waits for its charge date, not its due date, once open', async () => {
    const dueDate = '2031-04-12'; // a Saturday, the day after Good Friday
    await instructionOf('open-now', { openDate: new Date().toISOString(), dueDate, schemeId: bankSchemeId });
    const open = await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/open-now')).body.instructions[0],
      (i) => i.status === 'OPEN' && i.nextActionAt !== null,
      { what: 'the instruction open, waiting' },
    );
    // What it waits for first is telling the customer, 14 days before the charge date (not the due date).
    expect(open).toMatchObject({ chargeDate: '2031-04-14T23:00:00.000Z', nextActionAt: '2031-03-31T23:00:00.000Z' });
  });

  it('is charged again by the rule when its due date is amended: Christmas and its substitute days skipped', async () => {
    await instructionOf('amended', { dueDate: '2031-03-03', schemeId: bankSchemeId });
    // 2032-12-25 is a Saturday: the bank holidays are Monday 27th and Tuesday 28th.
    const res = await tenant.client.request('PATCH', '/v1/order-management/amended/instructions/a', {
      body: { dueDate: '2032-12-25' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const amended = await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/amended')).body.instructions[0],
      (i) => i.dueDate === '2032-12-25T00:00:00.000Z',
      { what: 'the amendment in the read model' },
    );
    expect(amended.chargeDate).toBe('2032-12-29T00:00:00.000Z');
  });

  it('follows each of the tenant’s rules, never before the day it opens', async () => {
    // Saturday 2031-05-31, the last day of May.
    await setRule('MODIFIED_FOLLOWING');
    expect(await instructionOf('modified', { dueDate: '2031-05-31', schemeId: bankSchemeId })).toMatchObject({
      chargeDate: '2031-05-29T23:00:00.000Z',
    });
    await setRule('PRECEDING');
    expect(await instructionOf('preceding', { dueDate: '2031-05-31', schemeId: bankSchemeId })).toMatchObject({
      chargeDate: '2031-05-29T23:00:00.000Z',
    });
    // Opening that Saturday, it cannot be charged the Friday before: the Monday after.
    expect(
      await instructionOf('preceding-open', { openDate: '2031-05-31', dueDate: '2031-05-31', schemeId: bankSchemeId }),
    ).toMatchObject({ chargeDate: '2031-06-01T23:00:00.000Z' });
    await setRule('NONE');
    const none = await instructionOf('none', { dueDate: '2031-05-31', schemeId: bankSchemeId });
    expect(none.chargeDate).toBe(none.dueDate);
    await setRule('FOLLOWING');
    expect(await instructionOf('following', { dueDate: '2031-05-31', schemeId: bankSchemeId })).toMatchObject({
      chargeDate: '2031-06-01T23:00:00.000Z',
    });
  });

  it('refuses a rule that is not one', async () => {
    const res = await tenant.account.request('PATCH', `/v1/account/tenants/${tenant.tenantId}`, {
      body: { businessDayRule: 'NEXT' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('businessDayRule');
  });
});
