import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowNotFoundError } from '@temporalio/client';
import { PaymentInstruction, Tenant } from '../../db/entities/index.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { buildOrder } from '../../orders/order-plans.js';
import { eventually } from '../support/eventually.js';
import { expectNoSecretsInLogs } from '../support/secrets-in-logs.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';
import { resolvedTo } from '../support/tenant-rows.js';

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

function instruction(ref: string, overrides: Record<string, unknown> = {}) {
  return {
    instructionRef: ref,
    direction: 'DEBIT',
    amount: '20.00',
    currency: 'EUR',
    country: 'FR',
    openDate: inSeconds(0),
    dueDate: '2031-06-01',
    financialInstrumentId: 'card_ok',
    ...overrides,
  };
}

async function placeOrder(tenant: TenantFixture, orderRef: string, instructions: unknown[]) {
  const res = await tenant.client.request('POST', '/v1/order-management', { body: { orderRef, instructions } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  // Changes go to the running workflow: wait until it has opened what opens now.
  await readOrder(
    tenant,
    orderRef,
    (o) => o.instructions.every((i: any) => i.status !== 'PENDING' || Date.parse(i.openDate) > Date.now() + 1000),
    'the order to run',
  );
}

function readOrder(tenant: TenantFixture, orderRef: string, done: (order: any) => boolean, what: string) {
  return eventually(async () => (await tenant.client.request('GET', `/v1/order-management/${orderRef}`)).body, done, {
    what,
    timeoutMs: 45_000,
  });
}

const byRef = (order: any, ref: string) => order.instructions.find((i: any) => i.instructionRef === ref);

describe('amending an instruction', () => {
  it('changes amount and due date at once: it is collected at its new date, for its new amount', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'amend-1', [instruction('a')]);
    const res = await tenant.client.request('PATCH', '/v1/order-management/amend-1/instructions/a', {
      body: { amount: '25.50', dueDate: inSeconds(2), metadata: { reason: 'upgrade' } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(byRef(res.body, 'a')).toMatchObject({ amount: '25.50', metadata: { reason: 'upgrade' }, status: 'OPEN' });
    const settled = await readOrder(
      tenant,
      'amend-1',
      (o) => o.status === 'COMPLETED',
      'the amended instruction collected',
    );
    expect(byRef(settled, 'a')).toMatchObject({ status: 'SETTLED', amount: '25.50' });
    expect(
      (await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'amend-1' })).map((p) => p.amountMinor),
    ).toEqual(['2550']);
  });

  it('answers 409 with the reason when the change may not be made, and 400 when it makes no sense', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'amend-2', [instruction('a')]);
    const reopen = await tenant.client.request('PATCH', '/v1/order-management/amend-2/instructions/a', {
      body: { openDate: '2031-01-01' },
    });
    expect(reopen).toMatchObject({
      status: 409,
      body: { code: 'instruction_not_changeable', detail: expect.stringMatching(/open already/) },
    });
    const inverted = await tenant.client.request('PATCH', '/v1/order-management/amend-2/instructions/a', {
      body: { dueDate: '2020-01-01' },
    });
    expect(inverted).toMatchObject({ status: 400, body: { errors: [{ path: 'dueDate', code: 'due_before_open' }] } });
    const empty = await tenant.client.request('PATCH', '/v1/order-management/amend-2/instructions/a', { body: {} });
    expect(empty.status).toBe(400);
    // Found by the fuzzer: a zero amount was a 500.
    const zero = await tenant.client.request('PATCH', '/v1/order-management/amend-2/instructions/a', {
      body: { amount: '0' },
    });
    expect(zero).toMatchObject({ status: 400, body: { errors: [{ path: 'amount', code: 'invalid_amount' }] } });
    const unknown = await tenant.client.request('PATCH', '/v1/order-management/amend-2/instructions/nope', {
      body: { amount: '1.00' },
    });
    expect(unknown).toMatchObject({ status: 404, body: { code: 'instruction_not_found' } });
  });

  it('resolves a new amount against the scheme again', async () => {
    const tenant = await system.newTenant();
    const [scheme] = (await tenant.client.request('GET', '/v1/schemes/collect')).body.items;
    await tenant.client.request('PUT', `/v1/schemes/collect/${scheme.schemeId}`, {
      body: {
        name: 'cards to 50',
        isDefault: true,
        rules: [
          {
            currencies: ['EUR'],
            maxAmount: '50.00',
            options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }],
          },
        ],
      },
    });
    await placeOrder(tenant, 'amend-3', [instruction('a')]);
    const tooMuch = await tenant.client.request('PATCH', '/v1/order-management/amend-3/instructions/a', {
      body: { amount: '75.00' },
    });
    expect(tooMuch).toMatchObject({ status: 400, body: { errors: [{ path: 'body', code: 'no_payment_option' }] } });
    const fine = await tenant.client.request('PATCH', '/v1/order-management/amend-3/instructions/a', {
      body: { amount: '45.00' },
    });
    expect(byRef(fine.body, 'a')).toMatchObject({ amount: '45.00', schemeVersion: 2 });
  });

  it('cures an instruction waiting LATE for an instrument', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'cure-1', [instruction('a', { dueDate: inSeconds(1), financialInstrumentId: undefined })]);
    await readOrder(tenant, 'cure-1', (o) => o.instructions[0].status === 'LATE', 'LATE without an instrument');
    await tenant.client.request('PATCH', '/v1/order-management/cure-1/instructions/a', {
      body: { financialInstrumentId: 'card_ok' },
    });
    const settled = await readOrder(
      tenant,
      'cure-1',
      (o) => o.status === 'COMPLETED',
      'collected once it had an instrument',
    );
    expect(settled.instructions[0]).toMatchObject({
      status: 'SETTLED',
      financialInstrumentId: 'card_ok',
      failureCode: null,
    });
  });
});

describe('cancelling', () => {
  it('cancels one instruction, and then the rest of the order', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'cancel-1', [instruction('a'), instruction('b'), instruction('c')]);
    const one = await tenant.client.request('POST', '/v1/order-management/cancel-1/instructions/b/cancel');
    expect(one.status).toBe(200);
    expect(byRef(one.body, 'b')).toMatchObject({ status: 'CANCELLED', cancelledAt: expect.any(String) });
    const again = await tenant.client.request('POST', '/v1/order-management/cancel-1/instructions/b/cancel');
    expect(again).toMatchObject({ status: 409, body: { code: 'instruction_not_changeable' } });
    const all = await tenant.client.request('POST', '/v1/order-management/cancel-1/cancel');
    expect(all.status).toBe(200);
    const cancelled = await readOrder(tenant, 'cancel-1', (o) => o.status === 'CANCELLED', 'the order CANCELLED');
    expect(cancelled.instructions.map((i: any) => i.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED']);
    const late = await tenant.client.request('POST', '/v1/order-management/cancel-1/instructions/a/cancel');
    expect(late).toMatchObject({ status: 409, body: { code: 'order_not_active' } });
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'cancel-1' })).toEqual([]);
  });
});

describe('an ACTIVE order whose workflow is not running', () => {
  it('answers 503 until its workflow is started, and 409 once an operator closed it, never starting it again', async () => {
    const tenant = await system.newTenant();
    // What an API that crashed between storing and starting leaves: the row, no workflow.
    const em = system.orm.em.fork();
    const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
    buildOrder(em, tenantRow, { orderRef: 'unstarted-1', instructions: [instruction('a') as never] }, [
      resolvedTo('SANDBOX_CARD', 'CARD'),
    ]);
    await em.flush();
    const cancelOne = () => tenant.client.request('POST', '/v1/order-management/unstarted-1/instructions/a/cancel');
    expect(await cancelOne()).toMatchObject({ status: 503, body: { code: 'order_not_running' } });
    await system.reconciler.runOnce();
    await readOrder(tenant, 'unstarted-1', (o) => o.instructions[0].status === 'OPEN', 'the started order to open');
    expect((await cancelOne()).status).toBe(200);

    await placeOrder(tenant, 'closed-1', [instruction('a')]);
    const handle = system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, 'closed-1'));
    await handle.terminate('an operator’s mistake');
    const refused = await tenant.client.request('POST', '/v1/order-management/closed-1/instructions/a/cancel');
    expect(refused).toMatchObject({
      status: 409,
      body: { code: 'order_workflow_closed', detail: expect.stringContaining('TERMINATED') },
    });
    expect((await tenant.client.request('GET', '/v1/order-management/closed-1')).body.status).toBe('ACTIVE');
    expect((await handle.describe()).status.name).toBe('TERMINATED');
  });

  it('answers 409, not a 503 to retry, once Temporal no longer keeps the started order’s closed workflow', async () => {
    const tenant = await system.newTenant();
    // What Temporal's retention leaves of an order whose workflow closed without ending it: the row
    // marked started longer ago than closed runs are kept, and no workflow under its id. One marked a
    // minute ago with none is not that (Temporal's data lost, another namespace): still a 503.
    const em = system.orm.em.fork();
    const tenantRow = await em.findOneOrFail(Tenant, { id: tenant.tenantId });
    const markedStarted = (orderRef: string, daysAgo: number, projectedDaysAgo = daysAgo) => {
      const order = buildOrder(em, tenantRow, { orderRef, instructions: [instruction('a') as never] }, [
        resolvedTo('SANDBOX_CARD', 'CARD'),
      ]);
      order.workflowStartedAt = new Date(Date.now() - daysAgo * 86_400_000);
      order.updatedAt = new Date(Date.now() - projectedDaysAgo * 86_400_000);
    };
    markedStarted('deleted-1', 400);
    markedStarted('lost-1', 0.001);
    // Started long ago, and projected a minute ago: its workflow was alive then.
    markedStarted('lost-2', 400, 0.001);
    await em.flush();
    const cancel = (orderRef: string) =>
      tenant.client.request('POST', `/v1/order-management/${orderRef}/instructions/a/cancel`);
    expect(await cancel('deleted-1')).toMatchObject({
      status: 409,
      body: { code: 'order_workflow_closed', detail: expect.stringContaining('no longer kept') },
    });
    for (const orderRef of ['lost-1', 'lost-2'])
      expect(await cancel(orderRef)).toMatchObject({ status: 503, body: { code: 'order_not_running' } });
    for (const orderRef of ['deleted-1', 'lost-1', 'lost-2'])
      await expect(
        system.client.workflow.getHandle(orderWorkflowId(tenant.tenantId, orderRef)).describe(),
      ).rejects.toThrow(WorkflowNotFoundError);
  });
});

describe('adding an instruction', () => {
  it('adds it to a live order, resolved and run like the others', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'add-1', [instruction('a')]);
    const added = await tenant.client.request('POST', '/v1/order-management/add-1/instructions', {
      body: instruction('b', { dueDate: inSeconds(2), metadata: { added: 'later' } }),
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(byRef(added.body, 'b')).toMatchObject({ appId: 'SANDBOX_CARD', metadata: { added: 'later' } });
    const duplicate = await tenant.client.request('POST', '/v1/order-management/add-1/instructions', {
      body: instruction('b'),
    });
    expect(duplicate).toMatchObject({ status: 409, body: { code: 'instruction_exists' } });
    const settled = await readOrder(
      tenant,
      'add-1',
      (o) => byRef(o, 'b')?.status === 'SETTLED',
      'the added instruction collected',
    );
    expect(settled.instructions.map((i: any) => i.instructionRef)).toEqual(['a', 'b']);
    const rows = await system.orm.em
      .fork()
      .find(PaymentInstruction, { tenantId: tenant.tenantId, instructionRef: 'b' });
    expect(rows).toHaveLength(1);
  });
});

describe('paying early', () => {
  it('shows the options and takes the customer’s payment at once, once', async () => {
    const tenant = await system.newTenant();
    await placeOrder(tenant, 'pay-1', [instruction('a')]);
    const options = await tenant.client.request('GET', '/v1/order-management/pay-1/instructions/a/options');
    expect(options.body).toMatchObject({
      status: 'OPEN',
      amount: '20.00',
      options: [{ paymentMethod: 'CARD', appId: 'SANDBOX_CARD' }],
    });
    const wrong = await tenant.client.request('POST', '/v1/order-management/pay-1/instructions/a/pay', {
      body: { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', financialInstrumentId: 'x' },
    });
    expect(wrong).toMatchObject({ status: 400, body: { errors: [{ code: 'option_not_offered' }] } });
    // Paid for the amount the customer was shown, which is no longer the instruction's: nothing is paid.
    const shownBefore = await tenant.client.request('POST', '/v1/order-management/pay-1/instructions/a/pay', {
      body: { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok', amount: '2.00' },
    });
    expect(shownBefore).toMatchObject({ status: 409, body: { code: 'amount_changed' } });
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'pay-1' })).toHaveLength(0);
    const keys = [randomUUID(), randomUUID()];
    const body = { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok', amount: '20.00' };
    const pay = (key: string) =>
      tenant.client.request('POST', '/v1/order-management/pay-1/instructions/a/pay', {
        body,
        headers: { 'idempotency-key': key },
      });
    // Two submits at once: one is taken, the other refused.
    const answers = await Promise.all(keys.map(pay));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const paid = await readOrder(tenant, 'pay-1', (o) => o.status === 'COMPLETED', 'paid long before its due date');
    expect(Date.parse(paid.instructions[0].settledAt)).toBeLessThan(Date.parse('2031-06-01'));
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'pay-1' })).toHaveLength(1);
    // The taken one's key replays its answer; the refused one's key was not kept, and is refused again.
    const taken = answers.findIndex((a) => a.status === 202);
    const replay = await pay(keys[taken]);
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(answers[taken].body);
    const refusedAgain = await pay(keys[1 - taken]);
    expect(refusedAgain.status).toBe(409);
    expect(refusedAgain.headers.get('idempotent-replayed')).toBeNull();
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'pay-1' })).toHaveLength(1);
  });

  it('pays a voucher out when the customer chooses one of the option’s vouchers', async () => {
    const tenant = await system.newTenant();
    await tenant.client.request('POST', '/v1/marketplace/apps/SANDBOX_VOUCHERS/install', {
      body: { configuration: { apiKey: tenant.sandboxApiKey } },
    });
    const group = (
      await tenant.client.request('POST', '/v1/voucher-groups', {
        body: { name: 'g', vouchers: [{ voucherId: 'amazon-de', enabled: true }] },
      })
    ).body;
    await tenant.client.request('POST', '/v1/schemes/payout', {
      body: {
        name: 'vouchers',
        isDefault: true,
        rules: [
          {
            voucherGroupIds: [group.voucherGroupId],
            options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
          },
        ],
      },
    });
    await placeOrder(tenant, 'payout-1', [
      instruction('p', { direction: 'CREDIT', country: 'DE', amount: '15.00', financialInstrumentId: undefined }),
    ]);
    const options = await tenant.client.request('GET', '/v1/order-management/payout-1/instructions/p/options');
    expect(options.body.options[0]).toMatchObject({
      paymentMethod: 'VOUCHER',
      vouchers: [{ voucherId: 'amazon-de', brand: 'Amazon' }],
    });
    const pay = () =>
      tenant.client.request('POST', '/v1/order-management/payout-1/instructions/p/pay', {
        body: { appId: 'SANDBOX_VOUCHERS', paymentMethod: 'VOUCHER', voucherId: 'amazon-de' },
      });
    // The read model behind an amendment (20.00 shown, 15.00 planned): the voucher was offered for
    // the amount read, so its payout is refused, not sent for another.
    const rows = () => system.orm.em.fork();
    const where = { tenantId: tenant.tenantId, instructionRef: 'p' };
    await rows().nativeUpdate(PaymentInstruction, where, { amountMinor: 2000n });
    const stale = await pay();
    expect(stale.status, JSON.stringify(stale.body)).toBe(409);
    expect(stale.body.code).toBe('amount_changed');
    await rows().nativeUpdate(PaymentInstruction, where, { amountMinor: 1500n });
    const taken = await pay();
    expect(taken.status, JSON.stringify(taken.body)).toBe(202);
    const paid = await readOrder(tenant, 'payout-1', (o) => o.status === 'COMPLETED', 'the voucher paid out');
    expect(paid.instructions[0]).toMatchObject({ status: 'SETTLED', voucherCode: expect.stringMatching(/^VCH-/) });
  });
});

describe('logs', () => {
  it('never contain a private key, a signature header or an access token', () => {
    expectNoSecretsInLogs(system);
  });
});
