// Stored instruments (ARCHITECTURE.md, "Customers"): the payment page sends the customer to the
// provider's own form, gets back a one-time reference, exchanges it for the provider's token, keeps
// that (sealed; on the customer when they ask), and pays with it. No card number reaches us.
import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_SIGNATURE_HEADER, signSandboxCallback } from '../../apps/sandbox/callback-signature.js';
import { InstrumentStore } from '../../customers/instrument-store.js';
import { Customer, PaymentInstruction, PaymentInstrument, PaymentOrder } from '../../db/entities/index.js';
import { Migration20261206230100 } from '../../db/migrations/Migration20261206230100.js';
import { SecretBox } from '../../db/secret-box.js';
import { findApp } from '../../domain/app-catalog.js';
import { madeUnderDigest } from '../../domain/retired-secrets.js';
import { orderWorkflowId, paymentIdempotencyKey } from '../../orders/contract/ids.js';
import {
  eraseSpentOneTimeTokens,
  sweepEnteredTokens,
  UNNAMED_ENTERED_KEPT_MS,
} from '../../orders/one-time-instruments.js';
import { eventually } from '../support/eventually.js';
import { post, visit } from '../support/pay-page-client.js';
import { stoppedWhileAnswering } from '../support/stopped-while-answering.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { insertInstructionRows } from '../support/instruction-rows.js';
import { createTenantRows } from '../support/tenant-rows.js';

let system: TestSystem;
let tenant: TenantFixture;
let bankSchemeId: string;

const CARD = '4242 4242 4242 4242';

beforeAll(async () => {
  system = await startSystem();
  tenant = await system.newTenant();
  bankSchemeId = await tenant.bankDebitScheme();
  const customer = await tenant.client.request('POST', '/v1/customers', {
    body: { customerRef: 'CUS-ada', name: 'Ada Lovelace' },
  });
  expect(customer.status).toBe(201);
});
afterAll(async () => {
  await system?.close();
});

/** Asks for an order of one instruction for CUS-ada, open now and due in a week: the API's answer. */
function askForOrder(orderRef: string, instruction: Record<string, unknown> = {}) {
  const now = Date.now();
  return tenant.client.request('POST', '/v1/order-management', {
    body: {
      orderRef,
      customerRef: 'CUS-ada',
      instructions: [
        {
          instructionRef: 'premium',
          direction: 'DEBIT',
          amount: '12.00',
          currency: 'EUR',
          country: 'FR',
          openDate: new Date(now - 1000).toISOString(),
          dueDate: new Date(now + 7 * 86_400_000).toISOString(),
          ...instruction,
        },
      ],
    },
  });
}

async function order(orderRef: string, instruction: Record<string, unknown> = {}) {
  const res = await askForOrder(orderRef, instruction);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

const instructionOf = async (orderRef: string) =>
  (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body.instructions[0];

const instructionRowOf = (orderRef: string) =>
  system.orm.em
    .fork()
    .findOneOrFail(PaymentInstruction, { tenantId: tenant.tenantId, order: { orderRef }, instructionRef: 'premium' });

/** Waits for the order's instruction to open (its workflow's first projection written): the instruction. */
const untilOpen = (orderRef: string) =>
  eventually(
    () => instructionOf(orderRef),
    (i) => i.status === 'OPEN',
    { what: `${orderRef} open` },
  );

async function openLink(orderRef: string): Promise<string> {
  await untilOpen(orderRef);
  const link = await tenant.client.request(
    'POST',
    `/v1/order-management/${orderRef}/instructions/premium/payment-link`,
    {
      body: {},
    },
  );
  expect(link.status).toBe(201);
  return link.body.url;
}

/**
 * A card as the provider's form would have given it, kept straight in the tenant's rows: saved on
 * `customer` if given. Its token, unless one of the sandbox's test instruments is given, is one the
 * sandbox never issued.
 */
function storedCard(em: EntityManager, customer?: Customer, token = `tok_${randomUUID()}`): PaymentInstrument {
  return new InstrumentStore(SecretBox.fromMasterKeys(system.masterKeys)).add(
    em,
    tenant.tenantId,
    'SANDBOX_CARD',
    { token, paymentMethod: 'CARD', display: {} },
    { customer },
  );
}

/** Whether each instrument's token is still kept, by the name of its case. */
async function tokensKept(instruments: Record<string, PaymentInstrument>): Promise<Record<string, boolean>> {
  const kept: Record<string, boolean> = {};
  for (const [name, { id }] of Object.entries(instruments))
    kept[name] = (await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id })).tokenCiphertext !== null;
  return kept;
}

/** The customer chooses a new card on our page (`shown`, or as it is now) and types it on the provider's: the address back. */
async function enterNewCard(
  linkUrl: string,
  { save, card = CARD, shown }: { save: boolean; card?: string; shown?: Awaited<ReturnType<typeof visit>> },
) {
  const page = shown ?? (await visit(linkUrl));
  expect(page.res.status).toBe(200);
  const fields: Record<string, string> = {
    option: 'SANDBOX_CARD:CARD',
    'instrument:SANDBOX_CARD:CARD': 'new',
    csrf: page.csrf!,
    form: page.form!,
    amount: page.amount!,
  };
  if (save) fields['save:SANDBOX_CARD:CARD'] = 'yes';
  const toProvider = await post(linkUrl, fields, page.cookie);
  expect(toProvider.status).toBe(303);
  const providerForm = toProvider.headers.get('location')!;
  expect(providerForm.startsWith(`${system.sandbox.url}/hosted/`)).toBe(true);
  const form = await fetch(providerForm);
  expect(await form.text()).toContain('Card number');
  const back = await post(providerForm, { number: card, expiry: '12/30', cvc: '123', name: 'Ada Lovelace' });
  expect(back.status).toBe(303);
  const returnUrl = back.headers.get('location')!;
  expect(returnUrl.startsWith(`${linkUrl}/return?`)).toBe(true);
  return { page, returnUrl };
}

/** The customer enters a new card (above) and comes back. */
async function payWithNewCard(linkUrl: string, entry: Parameters<typeof enterNewCard>[1]) {
  const entered = await enterNewCard(linkUrl, entry);
  const returned = await fetch(entered.returnUrl, { redirect: 'manual' });
  expect(returned.status, await returned.clone().text()).toBe(303);
  return entered;
}

describe('a card entered on the provider’s own form', () => {
  it('is paid with as a token, saved on the customer when asked, and shown by its last four digits only', async () => {
    await order('ORD-new-card');
    const linkUrl = await openLink('ORD-new-card');
    const page = await visit(linkUrl);
    // The page takes no card number: no field for one, and its form may go to the provider alone.
    expect(page.html).not.toMatch(/name="instrument:[^"]+" [^>]*type="text"|type="text"[^>]*name="instrument/);
    expect(page.res.headers.get('content-security-policy')).toContain(`form-action 'self' ${system.sandbox.url}`);

    const { returnUrl } = await payWithNewCard(linkUrl, { save: true });
    await eventually(
      () => instructionOf('ORD-new-card'),
      (i) => i.status === 'SETTLED',
      { what: 'the card payment settled' },
    );
    const [charge] = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-new-card' });
    expect(charge.instrument).toMatch(/^tok_[A-Za-z]{24}$/);

    const customer = await tenant.client.request('GET', '/v1/customers/CUS-ada');
    expect(customer.body.instruments).toEqual([
      {
        instrumentId: expect.any(String),
        appId: 'SANDBOX_CARD',
        paymentMethod: 'CARD',
        tokenHint: `…${charge.instrument!.slice(-4)}`,
        display: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2030, holderName: 'Ada Lovelace' },
        status: 'ACTIVE',
        mandate: null,
        createdAt: expect.any(String),
      },
    ]);
    expect((await instructionOf('ORD-new-card')).instrumentId).toBe(customer.body.instruments[0].instrumentId);

    // The return address again (a reload): its reference is spent, and nothing is charged twice.
    const again = await fetch(returnUrl, { redirect: 'manual' });
    expect(again.status).toBe(303);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-new-card' })).toHaveLength(1);

    // The token is sealed at rest; the card number is nowhere.
    const tables = await system.orm.em
      .fork()
      .getConnection()
      .execute(`select count(*) as n from payment_instrument t where t::text like ? or t::text like ?`, [
        `%${charge.instrument}%`,
        '%4242424242424242%',
      ]);
    expect(Number(tables[0].n)).toBe(0);
    const logs = system.logLines.join('\n');
    expect(logs).not.toContain('4242424242424242');
    expect(logs).not.toContain(charge.instrument);
  });

  it('is offered again on the customer’s next link, and paid with through the API and at an instruction’s due date', async () => {
    const [saved] = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items;
    await order('ORD-second');
    const linkUrl = await openLink('ORD-second');
    const page = await visit(linkUrl);
    expect(page.html).toContain('Visa •••• 4242, expires 12/30');
    const paid = await post(
      linkUrl,
      {
        option: 'SANDBOX_CARD:CARD',
        'instrument:SANDBOX_CARD:CARD': saved.instrumentId,
        csrf: page.csrf!,
        form: page.form!,
        amount: page.amount!,
      },
      page.cookie,
    );
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toMatch(/\?after=0&at=\d+$/);
    await eventually(
      () => instructionOf('ORD-second'),
      (i) => i.status === 'SETTLED',
      { what: 'paid with the saved card' },
    );

    await order('ORD-api-pay');
    await openLink('ORD-api-pay');
    const byApi = await tenant.client.request('POST', '/v1/order-management/ORD-api-pay/instructions/premium/pay', {
      body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', instrumentId: saved.instrumentId },
    });
    expect(byApi.status, JSON.stringify(byApi.body)).toBe(202);

    await order('ORD-scheduled', {
      dueDate: new Date(Date.now() + 1500).toISOString(),
      instrumentId: saved.instrumentId,
    });
    for (const orderRef of ['ORD-api-pay', 'ORD-scheduled']) {
      await eventually(
        () => instructionOf(orderRef),
        (i) => i.status === 'SETTLED',
        { what: `${orderRef} settled with the saved card` },
      );
    }
    // A declined payment tried again with the saved card.
    await order('ORD-retry', {
      dueDate: new Date(Date.now() + 500).toISOString(),
      financialInstrumentId: 'card_declined',
    });
    await eventually(
      () => instructionOf('ORD-retry'),
      (i) => i.status === 'FAILED',
      { what: 'declined for good' },
    );
    const retried = await tenant.client.request('POST', '/v1/order-management/ORD-retry/instructions/premium/retry', {
      body: { instrumentId: saved.instrumentId },
    });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const retriedPaid = await eventually(
      () => instructionOf('ORD-retry'),
      (i) => i.status === 'SETTLED',
      { what: 'retried with the saved card' },
    );
    expect(retriedPaid).toMatchObject({ instrumentId: saved.instrumentId, financialInstrumentId: null });
    const tokens = new Set(
      (await system.sandbox.ledger({ tenantId: tenant.tenantId }))
        .filter((c) => c.orderRef !== 'ORD-new-card' && c.status === 'SETTLED')
        .map((c) => c.instrument),
    );
    expect([...tokens]).toEqual([
      (await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-new-card' }))[0].instrument,
    ]);
  });

  it('is not saved unless asked, kept only until its payment settles, and a removed one pays nothing: LATE instrument_removed', async () => {
    await order('ORD-once');
    await payWithNewCard(await openLink('ORD-once'), { save: false });
    await eventually(
      () => instructionOf('ORD-once'),
      (i) => i.status === 'SETTLED',
      { what: 'paid once' },
    );
    expect((await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items).toHaveLength(1);
    const unsaved = await system.orm.em.fork().find(PaymentInstrument, { tenantId: tenant.tenantId, saved: false });
    // Its one payment settled (written with the status), its token is kept nowhere.
    // It remembers the instruction it was entered for (what the sweep below reads).
    const paid = await instructionRowOf('ORD-once');
    expect(unsaved.map((i) => [i.id, i.tokenCiphertext, i.enteredFor])).toEqual([
      [paid.instrumentId, null, paid.instructionId],
    ]);

    const [saved] = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items;
    await order('ORD-removed', {
      dueDate: new Date(Date.now() + 3000).toISOString(),
      instrumentId: saved.instrumentId,
    });
    expect(
      (await tenant.client.request('DELETE', `/v1/customers/CUS-ada/instruments/${saved.instrumentId}`)).status,
    ).toBe(204);
    const late = await eventually(
      () => instructionOf('ORD-removed'),
      (i) => i.status === 'LATE',
      { what: 'the instruction LATE' },
    );
    expect(late.failureCode).toBe('provider_rejected:instrument_removed');
    // Removed, its token is kept nowhere.
    const removed = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: saved.instrumentId });
    expect([removed.status, removed.tokenCiphertext]).toEqual(['REMOVED', null]);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-removed' })).toEqual([]);
    const refused = await tenant.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'ORD-refused',
        customerRef: 'CUS-ada',
        instructions: [
          {
            instructionRef: 'a',
            direction: 'DEBIT',
            amount: '1.00',
            currency: 'EUR',
            country: 'FR',
            openDate: '2031-01-01',
            dueDate: '2031-01-02',
            instrumentId: saved.instrumentId,
          },
        ],
      },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ path: 'instructions[0].instrumentId', code: 'instrument_not_found' }),
    ]);
  });

  it('given for one payment and not saved pays no other: declined, then due again, it is refused, never charged again', async () => {
    await order('ORD-once-declined');
    // The sandbox's form takes this test number as a card its bank declines.
    await payWithNewCard(await openLink('ORD-once-declined'), { save: false, card: '4000 0000 0000 0002' });
    await eventually(
      () => instructionOf('ORD-once-declined'),
      (i) => i.status === 'LATE' && i.failureCode !== null,
      { what: 'the customer’s payment declined' },
    );
    const charges = () => system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-once-declined' });
    expect(await charges()).toHaveLength(1);
    // The tenant moves its due date to now: due again, with the card the customer gave for that payment alone.
    const moved = await tenant.client.request('PATCH', '/v1/order-management/ORD-once-declined/instructions/premium', {
      body: { dueDate: new Date().toISOString() },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const refused = await eventually(
      () => instructionOf('ORD-once-declined'),
      (i) => i.failureCode === 'provider_rejected:instrument_not_saved',
      { what: 'the payment refused: the card was not saved' },
    );
    expect(refused.status).toBe('LATE');
    expect(await charges()).toHaveLength(1);
    // Its one payment over, its token is kept nowhere.
    const spent = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: refused.instrumentId });
    expect([spent.saved, spent.tokenCiphertext]).toEqual([false, null]);
  });

  it('declined, then replaced by another the customer pays with, is kept nowhere, nor is the other once paid', async () => {
    await order('ORD-second-card');
    const link = await openLink('ORD-second-card');
    await payWithNewCard(link, { save: false, card: '4000 0000 0000 0002' });
    const declined = await eventually(
      () => instructionOf('ORD-second-card'),
      (i) => i.status === 'LATE' && i.failureCode !== null,
      { what: 'the first card declined' },
    );
    await payWithNewCard(link, { save: false });
    const paid = await eventually(
      () => instructionOf('ORD-second-card'),
      (i) => i.status === 'SETTLED',
      { what: 'paid with the second card' },
    );
    expect(paid.instrumentId).not.toBe(declined.instrumentId);
    const tokens = await system.orm.em
      .fork()
      .find(
        PaymentInstrument,
        { id: { $in: [declined.instrumentId, paid.instrumentId] } },
        { orderBy: { createdAt: 'asc' } },
      );
    expect(tokens.map((i) => [i.id, i.saved, i.tokenCiphertext])).toEqual([
      [declined.instrumentId, false, null],
      [paid.instrumentId, false, null],
    ]);
  });
});

describe('the page after a payment is sent', () => {
  it('waits a minute for its call to start, not for ever: a refusal with nothing under way brings the customer there too', async () => {
    await order('ORD-waited');
    const linkUrl = await openLink('ORD-waited');
    const { attempts } = await instructionOf('ORD-waited');
    const shown = async (sentMsAgo: number) =>
      (await visit(`${linkUrl}?after=${attempts}&at=${Date.now() - sentMsAgo}`)).html;
    const WAITING = 'Waiting for the payment to complete';
    expect(await shown(1000)).toContain(WAITING);
    for (const page of [await shown(61_000), (await visit(`${linkUrl}?after=${attempts}`)).html]) {
      expect(page).not.toContain(WAITING);
      expect(page).toContain('name="option"');
    }
  });
});

describe('the page of an order whose workflow was stopped', () => {
  it('says the payment cannot be taken, charging nothing and keeping nothing of the card entered', async () => {
    await order('ORD-stopped');
    const linkUrl = await openLink('ORD-stopped');
    const { returnUrl } = await enterNewCard(linkUrl, { save: false });
    await system.client.workflow
      .getHandle(orderWorkflowId(tenant.tenantId, 'ORD-stopped'))
      .terminate('an operator’s mistake');
    const returned = await fetch(returnUrl, { redirect: 'manual' });
    expect(returned.status).toBe(409);
    expect(await returned.text()).toContain('This payment cannot be taken here');
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-stopped' })).toEqual([]);
    const { instructionId } = await instructionRowOf('ORD-stopped');
    const entered = await system.orm.em.fork().find(PaymentInstrument, { enteredFor: instructionId });
    expect(entered.map((i) => [i.saved, i.tokenCiphertext])).toEqual([[false, null]]);
  });
});

describe('an order whose workflow Temporal’s retention deleted', () => {
  it('offers no form on the page: it says the payment cannot be taken here', async () => {
    // Its row as a closed run leaves it: started and last projected longer ago than runs are kept.
    await insertInstructionRows(system.orm, {
      tenantId: tenant.tenantId,
      prefix: 'ORD-deleted-',
      count: 1,
      status: 'OPEN',
      dueAt: "now() + interval '1 day'",
    });
    await system.orm.em.getConnection().execute(
      `update payment_order set workflow_started_at = now() - interval '400 days', updated_at = now() - interval '400 days'
         where tenant_id = ? and order_ref = ?`,
      [tenant.tenantId, 'ORD-deleted-1'],
    );
    // Through the API first (its 15 s deadline): the namespace's retention, read then, is known to the page's 2 s look.
    const cancel = await tenant.client.request(
      'POST',
      '/v1/order-management/ORD-deleted-1/instructions/premium/cancel',
    );
    expect(cancel).toMatchObject({ status: 409, body: { code: 'order_workflow_closed' } });
    const link = await tenant.client.request(
      'POST',
      '/v1/order-management/ORD-deleted-1/instructions/premium/payment-link',
      { body: {} },
    );
    expect(link.status, JSON.stringify(link.body)).toBe(201);
    const page = await fetch(link.body.url);
    const shown = await page.text();
    expect(page.status).toBe(409);
    expect(shown).not.toContain('<form');
    expect(shown).toContain('This payment cannot be taken here');
  });
});

describe('an order whose workflow was stopped while it answered a change', () => {
  it('on the page, says the payment may have been taken and not to pay again, keeping the card it may have charged', async () => {
    await order('ORD-stopped-answering');
    const linkUrl = await openLink('ORD-stopped-answering');
    const { returnUrl } = await enterNewCard(linkUrl, { save: false });
    const returned = await stoppedWhileAnswering(system.client, tenant.tenantId, 'ORD-stopped-answering', () =>
      fetch(returnUrl, { redirect: 'manual' }),
    );
    expect(returned.status).toBe(409);
    const said = await returned.text();
    expect(said).toContain('This payment could not be confirmed');
    expect(said).toContain('Please do not pay again');
    // Taken, the payment may have charged the card: it is not erased as a refused payment's would be.
    const { instructionId } = await instructionRowOf('ORD-stopped-answering');
    const entered = await system.orm.em.fork().find(PaymentInstrument, { enteredFor: instructionId });
    expect(entered.map((i) => i.tokenCiphertext !== null)).toEqual([true]);
    // Opened again, the page offers no payment its stopped workflow would refuse, and claims nothing of the first.
    const reloaded = await fetch(linkUrl);
    const shown = await reloaded.text();
    expect(reloaded.status).toBe(409);
    expect(shown).not.toContain('<form');
    expect(shown).toContain('This payment cannot be taken here');
    expect(shown).toContain('do not pay it again');
    expect(shown).not.toContain('charged nothing');
  });

  it('through the API, is 409 saying the change may have begun, again to a retry under its key; a change sent after is plainly refused', async () => {
    await order('ORD-stopped-amending');
    await untilOpen('ORD-stopped-amending');
    const path = '/v1/order-management/ORD-stopped-amending/instructions/premium';
    const amend = () =>
      tenant.client.request('PATCH', path, {
        body: { amount: '13.00' },
        headers: { 'idempotency-key': 'amend-stopped-answering' },
      });
    const amended = await stoppedWhileAnswering(system.client, tenant.tenantId, 'ORD-stopped-amending', amend);
    expect(amended).toMatchObject({ status: 409, body: { code: 'order_workflow_closed_during_change' } });
    expect(amended.body.detail).toMatch(/may have been sent/);
    // A client that lost that answer and sends the change again under its key (the update's id) learns
    // the same from Temporal, not a plainer "closed" that would hide that money may have moved.
    const retried = await amend();
    expect(retried).toMatchObject({ status: 409, body: { code: 'order_workflow_closed_during_change' } });
    const after = await tenant.client.request('PATCH', path, { body: { amount: '14.00' } });
    expect(after).toMatchObject({ status: 409, body: { code: 'order_workflow_closed' } });
  });
});

describe('a second tab’s card, back from the provider’s form after the order was paid', () => {
  it('is charged nothing and kept nowhere, and the page shows the payment made', async () => {
    await order('ORD-late-tab');
    const linkUrl = await openLink('ORD-late-tab');
    const secondTab = await enterNewCard(linkUrl, { save: false });
    await payWithNewCard(linkUrl, { save: false });
    // Ended (its one instruction settled), its workflow open for refunds: it takes no payment.
    await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/ORD-late-tab')).body.status,
      (status) => status === 'COMPLETED',
      { what: 'the order completed' },
    );
    const returned = await fetch(secondTab.returnUrl, { redirect: 'manual' });
    expect(returned.status).toBe(303);
    const shown = await fetch(new URL(returned.headers.get('location')!, linkUrl));
    expect(await shown.text()).toContain('this payment is complete');
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-late-tab' })).toHaveLength(1);
    const { instructionId } = await instructionRowOf('ORD-late-tab');
    const entered = await system.orm.em.fork().find(PaymentInstrument, { enteredFor: instructionId });
    expect(entered.map((i) => i.tokenCiphertext)).toEqual([null, null]);
  });
});

describe('a form used again after the card entered from it was declined (the browser’s back button)', () => {
  it('pays with the next card entered from it, not with the first one’s answer', async () => {
    await order('ORD-back-button');
    const linkUrl = await openLink('ORD-back-button');
    const shown = await visit(linkUrl);
    await payWithNewCard(linkUrl, { save: false, card: '4000 0000 0000 0002', shown });
    await eventually(
      () => instructionOf('ORD-back-button'),
      (i) => i.status === 'LATE' && i.failureCode !== null,
      { what: 'the first card declined' },
    );
    await payWithNewCard(linkUrl, { save: false, shown });
    const paid = await eventually(
      () => instructionOf('ORD-back-button'),
      (i) => i.status === 'SETTLED',
      { what: 'paid with the second card, from the same form' },
    );
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-back-button' });
    expect(charges).toHaveLength(2);
    const { instructionId } = await instructionRowOf('ORD-back-button');
    const entered = await system.orm.em
      .fork()
      .find(PaymentInstrument, { enteredFor: instructionId }, { orderBy: { createdAt: 'asc' } });
    expect(entered.map((i) => i.id)[1]).toBe(paid.instrumentId);
  });
});

describe('a form used again after the saved card chosen on it was declined (the browser’s back button)', () => {
  it('pays with the next saved card chosen on it', async () => {
    const em = system.orm.em.fork();
    const ada = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' });
    const [declining, good] = [storedCard(em, ada, 'card_declined'), storedCard(em, ada, 'card_ok')];
    await em.flush();
    await order('ORD-back-saved');
    const linkUrl = await openLink('ORD-back-saved');
    const shown = await visit(linkUrl);
    const choose = (instrumentId: string) =>
      post(
        linkUrl,
        {
          option: 'SANDBOX_CARD:CARD',
          'instrument:SANDBOX_CARD:CARD': instrumentId,
          csrf: shown.csrf!,
          form: shown.form!,
          amount: shown.amount!,
        },
        shown.cookie,
      );
    expect((await choose(declining.id)).status).toBe(303);
    await eventually(
      () => instructionOf('ORD-back-saved'),
      (i) => i.status === 'LATE' && i.failureCode !== null,
      { what: 'the first saved card declined' },
    );
    expect((await choose(good.id)).status).toBe(303);
    const paid = await eventually(
      () => instructionOf('ORD-back-saved'),
      (i) => i.status === 'SETTLED',
      { what: 'paid with the second saved card, from the same form' },
    );
    expect(paid.instrumentId).toBe(good.id);
  });
});

describe('a payout’s link', () => {
  it('saves no account its holder enters, even asked: a link passed on cannot choose where later payouts go', async () => {
    const scheme = await tenant.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'transfers',
        rules: [{ options: [{ appId: 'SANDBOX_BANK', paymentMethods: ['BANK_TRANSFER'], priority: 1 }] }],
      },
    });
    expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
    await order('ORD-payout', { direction: 'CREDIT', schemeId: scheme.body.schemeId });
    const linkUrl = await openLink('ORD-payout');
    const page = await visit(linkUrl);
    expect(page.res.status).toBe(200);
    // No box to tick; and one posted anyway saves nothing.
    expect(page.html).toContain('name="instrument:SANDBOX_BANK:BANK_TRANSFER"');
    expect(page.html).not.toContain('name="save:');
    const toProvider = await post(
      linkUrl,
      {
        option: 'SANDBOX_BANK:BANK_TRANSFER',
        'instrument:SANDBOX_BANK:BANK_TRANSFER': 'new',
        'save:SANDBOX_BANK:BANK_TRANSFER': 'yes',
        csrf: page.csrf!,
        form: page.form!,
        amount: page.amount!,
      },
      page.cookie,
    );
    expect(toProvider.status).toBe(303);
    const back = await post(toProvider.headers.get('location')!, { iban: 'DE89370400440532013000', name: 'Mallory' });
    expect(back.status).toBe(303);
    const returnUrl = back.headers.get('location')!;
    expect(new URL(returnUrl).searchParams.get('s')).toBe('1');
    expect((await fetch(returnUrl, { redirect: 'manual' })).status).toBe(303);
    const paid = await eventually(
      () => instructionOf('ORD-payout'),
      (i) => i.status === 'SETTLED',
      { what: 'paid out to the account entered' },
    );
    const entered = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: paid.instrumentId });
    expect([entered.saved, entered.customerId]).toEqual([false, null]);
    const saved = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items;
    expect(saved.map((i: { instrumentId: string }) => i.instrumentId)).not.toContain(paid.instrumentId);
  });
});

describe('a saved instrument of another customer of the tenant', () => {
  it('is not taken on this customer’s page, though posted: nothing is charged', async () => {
    const em = system.orm.em.fork();
    const bob = await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-bob', name: 'Bob' } });
    expect(bob.status).toBe(201);
    const bobs = storedCard(
      em,
      await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-bob' }),
    );
    await em.flush();
    await order('ORD-not-bobs');
    const linkUrl = await openLink('ORD-not-bobs');
    const page = await visit(linkUrl);
    expect(page.html).not.toContain(bobs.id);
    const posted = await post(
      linkUrl,
      {
        option: 'SANDBOX_CARD:CARD',
        'instrument:SANDBOX_CARD:CARD': bobs.id,
        csrf: page.csrf!,
        form: page.form!,
        amount: page.amount!,
      },
      page.cookie,
    );
    expect(posted.status).toBe(400);
    expect(await posted.text()).toContain('That choice is not available for this payment.');
    const after = await instructionOf('ORD-not-bobs');
    expect([after.status, after.instrumentId, after.attempts]).toEqual(['OPEN', null, 0]);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-not-bobs' })).toEqual([]);
  });
});

describe('an instruction for another customer than its order’s', () => {
  it('offers and saves that customer’s instruments on its page, never the order’s customer’s', async () => {
    const grace = await tenant.client.request('POST', '/v1/customers', {
      body: { customerRef: 'CUS-grace', name: 'Grace Hopper' },
    });
    expect(grace.status).toBe(201);
    const em = system.orm.em.fork();
    const adasCard = storedCard(
      em,
      await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' }),
    );
    await em.flush();
    await order('ORD-for-grace', { customerRef: 'CUS-grace' });
    const linkUrl = await openLink('ORD-for-grace');
    expect((await visit(linkUrl)).html).not.toContain(adasCard.id);
    await payWithNewCard(linkUrl, { save: true });
    const paid = await eventually(
      () => instructionOf('ORD-for-grace'),
      (i) => i.status === 'SETTLED',
      { what: 'paid with the card entered' },
    );
    const savedOn = async (customerRef: string) =>
      (await tenant.client.request('GET', `/v1/customers/${customerRef}/instruments`)).body.items.map(
        (i: { instrumentId: string }) => i.instrumentId,
      );
    expect(await savedOn('CUS-grace')).toEqual([paid.instrumentId]);
    expect(await savedOn('CUS-ada')).not.toContain(paid.instrumentId);
  });
});

/**
 * Names `instrumentId`, not one of `customerRef`'s here, everywhere an order of `client`'s tenant
 * for that customer can name an instrument (create, amend, pay now, retry a failed payment): each is
 * 400 instrument_not_found, and nothing names it or is charged.
 */
async function namedNowhere(client: TenantFixture, customerRef: string, instrumentId: string, prefix: string) {
  const instruction = {
    instructionRef: 'premium',
    direction: 'DEBIT',
    amount: '12.00',
    currency: 'EUR',
    country: 'FR',
    openDate: new Date(Date.now() - 1000).toISOString(),
    dueDate: new Date(Date.now() + 7 * 86_400_000).toISOString(),
  };
  const notFound = (res: { status: number; body: { errors?: { path: string; code: string }[] } }) => [
    res.status,
    res.body.errors?.map((e) => [e.path.split('.').at(-1), e.code]),
  ];
  const api = client.client;
  const created = await api.request('POST', '/v1/order-management', {
    body: { orderRef: `${prefix}-named`, customerRef, instructions: [{ ...instruction, instrumentId }] },
  });
  expect(notFound(created)).toEqual([400, [['instrumentId', 'instrument_not_found']]]);
  expect((await api.request('GET', `/v1/order-management/${prefix}-named`)).status).toBe(404);

  const orderOf = async (orderRef: string, status: string, plan: Record<string, unknown> = {}) => {
    const own = await api.request('POST', '/v1/order-management', {
      body: { orderRef, customerRef, instructions: [{ ...instruction, ...plan }] },
    });
    expect(own.status).toBe(202);
    return eventually(
      async () => (await api.request('GET', `/v1/order-management/${orderRef}`)).body.instructions?.[0],
      (i) => i?.status === status,
      { what: `${orderRef} ${status}` },
    );
  };
  await orderOf(`${prefix}-own`, 'OPEN');
  const amended = await api.request('PATCH', `/v1/order-management/${prefix}-own/instructions/premium`, {
    body: { instrumentId },
  });
  expect(notFound(amended)).toEqual([400, [['instrumentId', 'instrument_not_found']]]);
  const paid = await api.request('POST', `/v1/order-management/${prefix}-own/instructions/premium/pay`, {
    body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', instrumentId },
  });
  expect(notFound(paid)).toEqual([400, [['instrumentId', 'instrument_not_found']]]);
  const after = (await api.request('GET', `/v1/order-management/${prefix}-own`)).body.instructions[0];
  expect([after.status, after.instrumentId]).toEqual(['OPEN', null]);

  const failed = await orderOf(`${prefix}-failed`, 'FAILED', {
    dueDate: new Date(Date.now() + 500).toISOString(),
    financialInstrumentId: 'card_declined',
  });
  const retried = await api.request('POST', `/v1/order-management/${prefix}-failed/instructions/premium/retry`, {
    body: { instrumentId },
  });
  expect(notFound(retried)).toEqual([400, [['instrumentId', 'instrument_not_found']]]);
  const afterRetry = (await api.request('GET', `/v1/order-management/${prefix}-failed`)).body.instructions[0];
  expect([afterRetry.status, afterRetry.instrumentId, afterRetry.attempts]).toEqual(['FAILED', null, failed.attempts]);
  const charged = (await system.sandbox.ledger({ tenantId: client.tenantId })).filter((c) =>
    c.orderRef.startsWith(prefix),
  );
  expect(charged.map((c) => [c.orderRef, c.status])).toEqual([[`${prefix}-failed`, 'DECLINED']]);
}

describe('a saved instrument of another tenant', () => {
  it('is named by no order, amendment, payment or retry, though its customer has the same ref here', async () => {
    const em = system.orm.em.fork();
    const ada = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' });
    const theirs = storedCard(em, ada);
    await em.flush();
    const other = await system.newTenant();
    expect(
      (await other.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-ada', name: 'Ada' } })).status,
    ).toBe(201);
    await namedNowhere(other, 'CUS-ada', theirs.id, 'ORD-theirs');
  });
});

describe('a saved instrument of another customer of the tenant, through the API', () => {
  it('is named by no order, amendment, payment or retry of this customer’s', async () => {
    const em = system.orm.em.fork();
    expect(
      (await tenant.client.request('POST', '/v1/customers', { body: { customerRef: 'CUS-carol', name: 'Carol' } }))
        .status,
    ).toBe(201);
    const carols = storedCard(
      em,
      await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-carol' }),
    );
    await em.flush();
    await namedNowhere(tenant, 'CUS-ada', carols.id, 'ORD-carols');
  });
});

describe('the token of an instrument given for one payment', () => {
  it('is erased once an instruction naming it comes to rest: charged under its keys, or never charged unless it failed', async () => {
    const em = system.orm.em.fork();
    const ada = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' });
    const key = (instructionRef: string) => paymentIdempotencyKey(tenant.tenantId, 'ORD-rest', instructionRef, 2);
    // Each instruction of one order's projection: its status, and whose key charged the instrument it names.
    const cases = {
      settledChargedByIt: { status: 'SETTLED', chargedBy: 'settledChargedByIt' },
      settledNeverCharged: { status: 'SETTLED', chargedBy: null },
      cancelledNeverCharged: { status: 'CANCELLED', chargedBy: null },
      failedChargedByIt: { status: 'FAILED', chargedBy: 'failedChargedByIt' },
      failedNeverCharged: { status: 'FAILED', chargedBy: null },
      lateChargedByIt: { status: 'LATE', chargedBy: 'lateChargedByIt' },
      cancelledChargedByAnother: { status: 'CANCELLED', chargedBy: 'another' },
      cancelledChargedByOneNamedAlike: { status: 'CANCELLED', chargedBy: 'cancelledChargedByOneNamedAlike-2' },
      settledSaved: { status: 'SETTLED', chargedBy: null, saved: true },
    } as const;
    const instruments = Object.fromEntries(
      Object.entries(cases).map(([instructionRef, c]) => {
        const instrument = storedCard(em, 'saved' in c ? ada : undefined);
        instrument.chargedUnderKey = c.chargedBy && key(c.chargedBy);
        return [instructionRef, instrument];
      }),
    );
    await em.flush();
    await em.transactional((tx) =>
      eraseSpentOneTimeTokens(tx, {
        tenantId: tenant.tenantId,
        orderId: randomUUID(),
        orderRef: 'ORD-rest',
        version: '1',
        status: 'ACTIVE',
        events: [],
        instructions: Object.entries(cases).map(([instructionRef, c]) => ({
          instructionRef,
          status: c.status,
          instrumentId: instruments[instructionRef].id,
        })) as never,
      }),
    );
    expect(await tokensKept(instruments)).toEqual({
      settledChargedByIt: false,
      settledNeverCharged: false,
      cancelledNeverCharged: false,
      failedChargedByIt: false,
      // A retry may pay with it: the payment it was given for never happened.
      failedNeverCharged: true,
      lateChargedByIt: true,
      cancelledChargedByAnother: true,
      cancelledChargedByOneNamedAlike: true,
      settledSaved: true,
    });
  });
});

describe('an instrument entered on the page', () => {
  it('is erased a day on if its instruction does not name it, or names it failed in an order closed a day', async () => {
    const em = system.orm.em.fork();
    const ada = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' });
    const hour = 3_600_000;
    const aDayAnd = (ms: number) => new Date(Date.now() - UNNAMED_ENTERED_KEPT_MS - ms);
    const charged = { chargedUnderKey: paymentIdempotencyKey(tenant.tenantId, 'ORD-swept', 'premium', 1) };
    const ended = (openUntil: Date | null) => ({
      status: 'FAILED',
      order: { status: 'COMPLETED_WITH_FAILURES', openUntil },
    });
    // Each case's instrument; and the instruction naming it, if one does, and its order as projected.
    type Case = Partial<PaymentInstrument> & {
      customer?: Customer;
      namedBy?: { status?: string; order?: { status: string; openUntil: Date | null } };
    };
    const cases: Record<string, Case> = {
      unnamed: {},
      unnamedAnHourShortOfADay: { createdAt: aDayAnd(-hour) },
      // Declined, then let go for another card in a change the projection did not see.
      unnamedCharged: charged,
      named: { namedBy: {} },
      // A call under its key may be unanswered.
      chargedNamed: { ...charged, namedBy: {} },
      failedInAnOrderClosedADayAgo: { namedBy: ended(aDayAnd(60_000)) },
      failedInAnOrderClosedAnHourAgo: { namedBy: ended(new Date(Date.now() - hour)) },
      failedInAnOrderOpenForRetries: { namedBy: ended(new Date(Date.now() + 30 * 24 * hour)) },
      failedInAnOrderEndedWithNothingToCome: { namedBy: ended(null) },
      failedInAnActiveOrder: { namedBy: { status: 'FAILED' } },
      enteredForAGoneInstruction: { enteredFor: randomUUID() },
      enteredForNothing: { enteredFor: null },
      saved: { customer: ada },
    };
    // An open instruction for each that is named (its first projection written, which would undo the rows changed below).
    const named = Object.entries(cases).filter(([, c]) => c.namedBy);
    const rows = Object.fromEntries(
      await Promise.all(
        named.map(async ([name]) => {
          const orderRef = `ORD-swept-${name}`;
          await order(orderRef);
          await untilOpen(orderRef);
          return [name, await instructionRowOf(orderRef)] as const;
        }),
      ),
    );
    const instruments = Object.fromEntries(
      Object.entries(cases).map(([name, { customer, namedBy: _namedBy, ...fields }]) => {
        const instrument = storedCard(em, customer);
        // One not named was entered for an instruction that names another.
        const enteredFor = (rows[name] ?? rows.named).instructionId;
        Object.assign(instrument, { enteredFor, createdAt: aDayAnd(60_000), ...fields });
        return [name, instrument];
      }),
    );
    await em.flush();
    for (const [name, { namedBy }] of named) {
      const { instructionId, order: row } = rows[name];
      await em.nativeUpdate(
        PaymentInstruction,
        { instructionId },
        { instrumentId: instruments[name].id, ...(namedBy!.status ? { status: namedBy!.status as never } : {}) },
      );
      if (namedBy!.order) await em.nativeUpdate(PaymentOrder, { id: row.id }, namedBy!.order as never);
    }

    // One at a time: each batch full but the last.
    expect(await sweepEnteredTokens(system.orm, new AbortController().signal, 1)).toBeGreaterThanOrEqual(5);
    expect(await tokensKept(instruments)).toEqual({
      unnamed: false,
      unnamedAnHourShortOfADay: true,
      unnamedCharged: false,
      named: true,
      chargedNamed: true,
      failedInAnOrderClosedADayAgo: false,
      failedInAnOrderClosedAnHourAgo: true,
      failedInAnOrderOpenForRetries: true,
      failedInAnOrderEndedWithNothingToCome: false,
      failedInAnActiveOrder: true,
      enteredForAGoneInstruction: false,
      enteredForNothing: true,
      saved: true,
    });
  });
});

describe('the tokens of instruments entered before they remembered their instruction', () => {
  it('are erased once by a migration when a day old and named by no instruction', async () => {
    await order('ORD-before');
    await untilOpen('ORD-before');
    const { instructionId } = await instructionRowOf('ORD-before');
    const em = system.orm.em.fork();
    const ada = await em.findOneOrFail(Customer, { tenantId: tenant.tenantId, customerRef: 'CUS-ada' });
    const dayAgo = new Date(Date.now() - 86_400_000 - 60_000);
    const cases = { unnamed: {}, named: {}, unnamedYoung: { createdAt: new Date() }, saved: { customer: ada } };
    const instruments = Object.fromEntries(
      Object.entries(cases).map(
        ([name, { customer, ...fields }]: [string, { customer?: Customer; createdAt?: Date }]) => {
          const instrument = storedCard(em, customer);
          Object.assign(instrument, { createdAt: dayAgo, ...fields });
          return [name, instrument];
        },
      ),
    );
    await em.flush();
    await em.nativeUpdate(PaymentInstruction, { instructionId }, { instrumentId: instruments.named.id });
    await new Migration20261206230100(em.getDriver(), system.orm.config).up();
    expect(await tokensKept(instruments)).toEqual({ unnamed: false, named: true, unnamedYoung: true, saved: true });
  });
});

/** The customer chooses a new bank account on our page and signs the mandate on the provider's: the address back. */
async function enterNewBankAccount(linkUrl: string, iban: string): Promise<string> {
  const page = await visit(linkUrl);
  const toProvider = await post(
    linkUrl,
    {
      option: 'SANDBOX_BANK:BANK_DEBIT',
      'instrument:SANDBOX_BANK:BANK_DEBIT': 'new',
      'save:SANDBOX_BANK:BANK_DEBIT': 'yes',
      csrf: page.csrf!,
      form: page.form!,
      amount: page.amount!,
    },
    page.cookie,
  );
  expect(toProvider.status).toBe(303);
  const providerForm = toProvider.headers.get('location')!;
  const back = await post(providerForm, { iban, name: 'Ada Lovelace', consent: 'yes' });
  expect(back.status).toBe(303);
  return back.headers.get('location')!;
}

/** The customer enters a new bank account (above) and comes back. */
async function payWithNewBankAccount(linkUrl: string, iban: string) {
  const returned = await fetch(await enterNewBankAccount(linkUrl, iban), { redirect: 'manual' });
  expect(returned.status).toBe(303);
}

describe('a return from the provider’s form', () => {
  it('naming another option than the one whose form was filled is refused 400, keeping and charging nothing', async () => {
    const scheme = await tenant.client.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'card or bank',
        rules: [
          {
            options: [
              { appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 },
              { appId: 'SANDBOX_BANK', paymentMethods: ['BANK_DEBIT'], priority: 2 },
            ],
          },
        ],
      },
    });
    expect(scheme.status, JSON.stringify(scheme.body)).toBe(201);
    await order('ORD-other-method', { schemeId: scheme.body.schemeId });
    const linkUrl = await openLink('ORD-other-method');
    const returnUrl = new URL(await enterNewBankAccount(linkUrl, 'FR76 3000 6000 0112 3456 7890 189'));
    expect(returnUrl.searchParams.get('o')).toBe('SANDBOX_BANK:BANK_DEBIT');
    const instrumentsBefore = await system.orm.em.fork().count(PaymentInstrument, { tenantId: tenant.tenantId });
    // The address altered to the card option: the card app's exchange of the bank form's reference
    // (the tenant's two apps share the sandbox's key) gives a bank account.
    returnUrl.searchParams.set('o', 'SANDBOX_CARD:CARD');
    const returned = await fetch(returnUrl, { redirect: 'manual' });
    expect(returned.status).toBe(400);
    expect(await returned.text()).toContain('did not go through');
    expect(await system.orm.em.fork().count(PaymentInstrument, { tenantId: tenant.tenantId })).toBe(instrumentsBefore);
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-other-method' })).toEqual([]);
    expect((await instructionOf('ORD-other-method')).status).toBe('OPEN');
  });
});

const eventTypes = async () =>
  ((await tenant.client.request('GET', '/v1/events?limit=100')).body.items as { type: string }[]).map((e) => e.type);

describe('a bank debit’s mandate', () => {
  it('is signed on the provider’s form; a debit waits for the bank to confirm it, then goes', async () => {
    await order('ORD-mandate', { schemeId: bankSchemeId });
    // This test IBAN's mandate is PENDING until the bank is told to confirm it (then by callback).
    await payWithNewBankAccount(await openLink('ORD-mandate'), 'FR76 3000 6000 0112 3456 7890 189');
    // Tried at once and refused by us (mandate not active: nothing sent to the bank).
    const refused = await eventually(
      () => instructionOf('ORD-mandate'),
      (i) => i.status === 'LATE',
      { what: 'the debit refused for want of the mandate' },
    );
    expect(refused).toMatchObject({ attempts: 1, failureCode: 'provider_rejected:mandate_not_active' });
    const pending = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items.find(
      (i: any) => i.paymentMethod === 'BANK_DEBIT',
    );
    expect(pending.mandate.status).toBe('PENDING');
    await system.sandbox.confirmMandate(pending.mandate.mandateRef);
    const settled = await eventually(
      () => instructionOf('ORD-mandate'),
      (i) => i.status === 'SETTLED',
      { what: 'the debit settled once its mandate was confirmed' },
    );
    // Tried again once the bank confirmed the mandate.
    expect(settled).toMatchObject({ paymentMethod: 'BANK_DEBIT', attempts: 2 });
    const [account] = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items.filter(
      (i: any) => i.paymentMethod === 'BANK_DEBIT',
    );
    expect(account).toMatchObject({
      display: { maskedIban: 'FR76 •••• 0189', holderName: 'Ada Lovelace' },
      mandate: { mandateRef: expect.stringMatching(/^MDT-/), status: 'ACTIVE' },
    });
    // Kept with the merchant key the form was exchanged under, as a digest, sealed.
    const row = await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id: account.instrumentId });
    const madeAt = { configuration: {}, secrets: { apiKey: tenant.sandboxApiKey } };
    const kept = SecretBox.fromMasterKeys(system.masterKeys).open(
      row.madeUnderCiphertext!,
      `payment_instrument:${row.id}`,
    );
    expect(kept).toBe(madeUnderDigest(findApp('SANDBOX_BANK')!, madeAt, row.id));
    expect(row.madeUnderCiphertext).toMatch(/^v2\./);
    // The first call was refused for want of the mandate, the second (after the callback) paid.
    const charges = await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-mandate' });
    expect(charges.map((c) => c.status)).toEqual(['SETTLED']);
    await eventually(eventTypes, (types) => types.includes('mandate.created') && types.includes('mandate.active'), {
      what: 'mandate.created and mandate.active told',
    });
  });

  it('lets a debit refused while its mandate was pending go once the mandate is active, though the order was not told', async () => {
    const [account] = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items.filter(
      (i: any) => i.paymentMethod === 'BANK_DEBIT',
    );
    const em = system.orm.em.fork();
    // Our copy of the mandate as if the bank had not confirmed it yet.
    await em.nativeUpdate(PaymentInstrument, { id: account.instrumentId }, { mandateStatus: 'PENDING' });
    await order('ORD-untold', { schemeId: bankSchemeId });
    await untilOpen('ORD-untold');
    const paid = await tenant.client.request('POST', '/v1/order-management/ORD-untold/instructions/premium/pay', {
      body: { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', instrumentId: account.instrumentId },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(202);
    const refused = await eventually(
      () => instructionOf('ORD-untold'),
      (i) => i.status === 'LATE',
      { what: 'the debit refused for want of the mandate' },
    );
    expect(refused.failureCode).toBe('provider_rejected:mandate_not_active');
    // Confirmed with no signal to the order: as when the bank's callback came while the call was under
    // way, or before the read model showed the instrument on the instruction.
    await em.nativeUpdate(PaymentInstrument, { id: account.instrumentId }, { mandateStatus: 'ACTIVE' });
    const settled = await eventually(
      () => instructionOf('ORD-untold'),
      (i) => i.status === 'SETTLED',
      // Checked 10 s after the refusal, then 60 s after that: a machine slow to make the change above meets the second.
      { what: 'the debit settled at its next check of the mandate', timeoutMs: 90_000 },
    );
    expect(settled.attempts).toBe(2);
  }, 150_000);

  it('cancelled at the bank, leaves every instruction relying on it LATE mandate_cancelled, and a forged cancel changes nothing', async () => {
    const [account] = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items.filter(
      (i: any) => i.paymentMethod === 'BANK_DEBIT',
    );
    await order('ORD-relying', { schemeId: bankSchemeId, instrumentId: account.instrumentId });
    await untilOpen('ORD-relying');
    const mandateRef = account.mandate.mandateRef;
    // Told its notice ahead, with the mandate it will be collected under.
    const told = await eventually(
      async () =>
        (await tenant.client.request('GET', '/v1/events?type=instruction.upcoming&orderRef=ORD-relying')).body.items,
      (items: any[]) => items.length === 1,
      { what: 'instruction.upcoming told' },
    );
    expect(told[0].payload.data.instruction).toMatchObject({ mandateRef, instrumentId: account.instrumentId });
    const forged = await fetch(`${system.api.url}/v1/providers/SANDBOX_BANK/callbacks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'sandbox-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`,
      },
      body: JSON.stringify({ object: 'mandate', mandateRef, status: 'CANCELLED' }),
    });
    expect(forged.status).toBe(401);
    expect((await instructionOf('ORD-relying')).status).toBe('OPEN');

    // Providers name their own mandates: another tenant holds one named alike (held first), and this
    // tenant holds this one on a second instrument too. The bank's news is this tenant's, for both.
    const em = system.orm.em.fork();
    const held = await em.findOneOrFail(PaymentInstrument, { id: account.instrumentId });
    // Copies as stored before instruments kept the key they were made under (a sealed digest opens in its own row only).
    const { id: _id, tenantId: _tenant, customerId: _customer, createdAt, madeUnderCiphertext: _made, ...copy } = held;
    // The other tenant has the bank too, with its own key: its signature check fails, and the next tenant's is tried.
    const other = await system.newTenant();
    await other.bankDebitScheme();
    const namesake = em.create(PaymentInstrument, {
      ...copy,
      id: randomUUID(),
      tenantId: other.tenantId,
      createdAt: new Date(createdAt.getTime() - 60_000),
    });
    const second = em.create(PaymentInstrument, { ...copy, id: randomUUID(), tenantId: tenant.tenantId, createdAt });
    // Twenty more tenants hold it, all before this one, each with the bank under its own key: the
    // bank's callback names this tenant in its address, so they are not tried (20 would be, at most).
    const crowd: string[] = [];
    for (let n = 0; n < 20; n += 1) {
      const { tenantId } = await createTenantRows(system.orm, system.masterKeys, ['SANDBOX_BANK']);
      const id = randomUUID();
      em.create(PaymentInstrument, { ...copy, id, tenantId, createdAt: new Date(createdAt.getTime() - 120_000 + n) });
      crowd.push(id);
    }
    await em.flush();
    // Signed by this tenant, at an address naming another holder: refused, no other tried.
    /** The bank's news of the mandate at `status`, signed with this tenant's key, posted to `query`'s address. */
    const bankSays = (status: string, query = '', apiUrl = system.api.url) => {
      const body = JSON.stringify({ object: 'mandate', mandateRef, status });
      return fetch(`${apiUrl}/v1/providers/SANDBOX_BANK/callbacks${query}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SANDBOX_SIGNATURE_HEADER]: signSandboxCallback(tenant.sandboxApiKey, body),
        },
        body,
      });
    };
    expect((await bankSays('CANCELLED', `?tenantId=${other.tenantId}`)).status).toBe(401);
    // The same address with the bank's own query after it (a second `?`) still names the other holder.
    expect((await bankSays('CANCELLED', `?tenantId=${other.tenantId}?theirs=1`)).status).toBe(401);
    // Named, by an API that cannot open the tenant's credentials (a master key rotated without the
    // previous one): refused for now, to be sent again, not as forged (which a bank may take as final).
    const rotated = await system.startApi({ masterKeys: { current: randomBytes(32).toString('base64') } });
    try {
      const refused = await bankSays('CANCELLED', `?tenantId=${tenant.tenantId}`, rotated.url);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { code: string }).code).toBe('callback_unverifiable');
    } finally {
      await rotated.close();
    }
    expect((await instructionOf('ORD-relying')).status).toBe('OPEN');

    const cancelled = await fetch(`${system.sandbox.url}/v1/mandates/${mandateRef}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.sandboxApiKey}` },
    });
    expect(cancelled.status).toBe(202);
    const late = await eventually(
      () => instructionOf('ORD-relying'),
      (i) => i.status === 'LATE',
      { what: 'the instruction LATE once its mandate was cancelled' },
    );
    expect(late).toMatchObject({ failureCode: 'mandate_cancelled', instrumentId: null });
    const instruments = (await tenant.client.request('GET', '/v1/customers/CUS-ada/instruments')).body.items;
    expect(instruments.find((i: any) => i.instrumentId === account.instrumentId).mandate.status).toBe('CANCELLED');
    const mandateOf = async (id: string) =>
      (await system.orm.em.fork().findOneOrFail(PaymentInstrument, { id })).mandateStatus;
    expect(await mandateOf(second.id)).toBe('CANCELLED');
    expect(await mandateOf(namesake.id)).toBe('ACTIVE');
    // A confirmation the bank sends late (or again) does not bring an ended mandate back. Sent to an
    // address naming no tenant (as given before addresses named one), the holders are tried oldest
    // first: the other tenant's key fails, then this tenant's verifies.
    await system.orm.em.fork().nativeDelete(PaymentInstrument, { id: { $in: crowd } });
    const confirmedLate = await bankSays('ACTIVE');
    expect(confirmedLate.status).toBe(202);
    expect(await confirmedLate.json()).toEqual({ received: true, duplicate: true });
    expect(await mandateOf(account.instrumentId)).toBe('CANCELLED');
    // Nor is it debited again: an instruction naming the instrument is refused, its field named.
    const refused = await askForOrder('ORD-ended-mandate', {
      schemeId: bankSchemeId,
      instrumentId: account.instrumentId,
    });
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ path: 'instructions[0].instrumentId', code: 'mandate_ended' }),
    ]);
    // Each of this tenant's instruments is told.
    await eventually(
      async () =>
        (await tenant.client.request('GET', '/v1/events?type=mandate.cancelled')).body.items.map(
          (e: any) => e.payload.data.instrument.instrumentId,
        ),
      (ids: string[]) => ids.includes(account.instrumentId) && ids.includes(second.id),
      { what: 'mandate.cancelled told for both instruments' },
    );
    await eventually(eventTypes, (types) => types.includes('mandate.cancelled'), { what: 'mandate.cancelled told' });
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'ORD-relying' })).toEqual([]);
  });
});
