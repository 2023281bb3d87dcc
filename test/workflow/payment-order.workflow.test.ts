// The payment-order workflow on the time-skipping server: schedules, continue-as-new, provider calls and
// their answers (unanswered, other money, callbacks while asked, PENDING), and a database outage.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, inject, it } from 'vitest';
import { OrderEvent, PaymentInstruction } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { PROVIDER_CALL_PUT_OFF, type ExecutePaymentInput } from '../../orders/contract/activities.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { freePort } from '../../observability/free-port.js';
import {
  amendInstructionUpdate,
  resolveInstructionUpdate,
  cancelInstructionUpdate,
  orderStateQuery,
  providerResultSignal,
} from '../../orders/contract/messages.js';
import { type PaymentOrderWorkflowInput } from '../../orders/workflow/payment-order.workflow.js';
import type { createActivities } from '../../worker/create-activities.js';
import { MAX_PUT_OFFS } from '../../orders/workflow/provider-waits.js';
import { eventually } from '../support/eventually.js';
import { workerLogLines } from '../support/system.js';
import { recordHistory } from '../support/histories.js';
import { OrderEntity } from '../../orders/workflow/order-entity.js';
import { startHostileProvider } from '../support/hostile-provider.js';
import { startSandbox, type RunningSandbox } from '../support/sandbox.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { createTenantRows, resolvedTo } from '../support/tenant-rows.js';
import { lane } from '../support/lanes.js';

import {
  DAY_MS,
  env,
  orm,
  sandbox,
  masterKeys,
  storeOrder,
  createWorker,
  start,
  runOrder,
  waitFor,
  runsOf,
  patchesOf,
  scheduledActivities,
  atOwnProvider,
  paymentPendingAtProvider,
  answeredPending,
  paymentCalledBackWhileAsked,
  paymentUnknownAtProvider,
  returnCalledBack,
  statusPollRefused,
  takenOnce,
  expectRefused,
  record,
} from './order-harness.js';

/**
 * The worker's activities with its first `times` payment calls put off (PROVIDER_CALL_PUT_OFF), the
 * n-th saying an earlier attempt may have reached the provider when `reached(n)`; every call kept in `calls`.
 */
function putOffFirst(times: number, calls: ExecutePaymentInput[], reached: (n: number) => boolean) {
  return (real: ReturnType<typeof createActivities>) => ({
    ...real,
    async executePayment(call: ExecutePaymentInput) {
      calls.push(call);
      if (calls.length > times) return real.executePayment(call);
      throw ApplicationFailure.create({
        type: PROVIDER_CALL_PUT_OFF,
        message: 'put off',
        details: [reached(calls.length)],
        nonRetryable: true,
      });
    },
  });
}

describe('payment-order workflow on the time-skipping server', () => {
  it('runs a 12-instruction monthly schedule in order, in seconds of real time', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const start0 = (await env.currentTimeMs()) + DAY_MS;
    const specs = Array.from({ length: 12 }, (_, month) => {
      const open = new Date(start0);
      open.setUTCMonth(open.getUTCMonth() + month);
      return {
        instructionRef: `premium-${String(month + 1).padStart(2, '0')}`,
        amount: '49.99',
        currency: 'GBP',
        country: 'GB',
        openDate: open.toISOString(),
        dueDate: new Date(open.getTime() + 7 * DAY_MS).toISOString(),
      };
    });
    const input = await storeOrder(tenantId, 'monthly-12', specs);
    const startedAt = Date.now();
    const result = await runOrder(input);

    expect(Date.now() - startedAt).toBeLessThan(60_000);
    expect(result.status).toBe('COMPLETED');
    expect(result.instructions.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    result.instructions.forEach((i, index) => {
      expect(Date.parse(i.settledAt!)).toBeGreaterThanOrEqual(Date.parse(specs[index].dueDate));
      if (index > 0)
        expect(Date.parse(i.settledAt!)).toBeGreaterThan(Date.parse(result.instructions[index - 1].settledAt!));
    });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'monthly-12' });
    expect(payments.map((p) => p.idempotencyKey)).toEqual(
      specs.map((s) => `${tenantId}:monthly-12:${s.instructionRef}:1`),
    );
    const stored = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
    expect(stored.map((i) => i.status)).toEqual(Array(12).fill('SETTLED'));
    expect(stored.every((i) => i.amountMinor === 4999n)).toBe(true);
    await record('monthly-schedule', orderWorkflowId(tenantId, 'monthly-12'));
  });

  it('retries an insufficient-funds collection on the dunning schedule, then fails it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'dunning-1', [
      { instructionRef: 'premium-1', amount: '120.00', financialInstrumentId: 'card_insufficient_funds' },
    ]);
    const result = await runOrder(input);
    expect(result.instructions[0]).toMatchObject({ status: 'FAILED', attempts: 4, failureCode: 'insufficient_funds' });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'dunning-1' });
    // Each retry after a decline is a new payment attempt with its own idempotency key.
    expect(payments.map((p) => p.idempotencyKey.split(':').at(-1))).toEqual(['1', '2', '3', '4']);
    expect(payments.every((p) => p.status === 'DECLINED')).toBe(true);
    await record('dunning-exhausted', orderWorkflowId(tenantId, 'dunning-1'));
  });

  it('continues as new in the middle of a dunning wait, and carries on where it was', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'dunning-can', [
      { instructionRef: 'declined', financialInstrumentId: 'card_insufficient_funds' },
      {
        instructionRef: 'later',
        openDate: new Date((await env.currentTimeMs()) + 20 * DAY_MS).toISOString(),
        dueDate: new Date((await env.currentTimeMs()) + 21 * DAY_MS).toISOString(),
      },
    ]);
    const worker = await createWorker();
    const { view, runs } = await worker.runUntil(async () => {
      const handle = await start(input, { continueAsNewAfterEvents: 40 });
      const finished = await handle.result();
      return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
    });
    expect(runs.length).toBeGreaterThan(1);
    expect(view.instructions.map((i) => [i.instructionRef, i.status, i.attempts])).toEqual([
      ['declined', 'FAILED', 4],
      ['later', 'SETTLED', 1],
    ]);
    // A run ended while the declined instruction waited between retries, and the next picked up its dunning position.
    const payments = await sandbox.ledger({ tenantId, orderRef: 'dunning-can' });
    expect(
      payments.filter((p) => p.instructionRef === 'declined').map((p) => p.idempotencyKey.split(':').at(-1)),
    ).toEqual(['1', '2', '3', '4']);
  });

  it('continues as new with a payment pending at its bank, an unanswered call and a dunning wait in flight, each resumed', async () => {
    const provider = await startHostileProvider({ loseAnswers: 8 });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, undefined, provider);
      // A minute apart: timers firing at one instant make the Java test server lose a workflow task.
      const start0 = (await env.currentTimeMs()) + DAY_MS;
      const at = (minutes: number) => new Date(start0 + minutes * 60_000).toISOString();
      const input = await storeOrder(tenantId, 'can-in-flight', [
        {
          instructionRef: 'bank',
          openDate: at(0),
          dueDate: at(1),
          financialInstrumentId: 'bank_no_callback',
          resolution: resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
        },
        {
          instructionRef: 'own',
          openDate: at(2),
          dueDate: at(3),
          financialInstrumentId: 'card_1',
          resolution: resolvedTo('HTTP_CONNECTOR', 'CARD'),
        },
        {
          instructionRef: 'card',
          openDate: at(4),
          dueDate: at(5),
          financialInstrumentId: 'card_insufficient_funds',
        },
      ]);
      const worker = await createWorker();
      const { view, runs } = await worker.runUntil(async () => {
        const handle = await start(input, { continueAsNewAfterEvents: 30 });
        const finished = await handle.result();
        return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
      });
      expect(view.instructions.map((i) => [i.instructionRef, i.status])).toEqual([
        ['bank', 'SETTLED'],
        ['own', 'SETTLED'],
        ['card', 'FAILED'],
      ]);
      // Some run handed on the bank payment awaiting its provider, and the call that went unanswered.
      const carried = runs.slice(1).map((run) => {
        const [input] = (run.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? []).map(
          (p) => JSON.parse(Buffer.from(p.data!).toString()) as PaymentOrderWorkflowInput,
        );
        return input.continued!.instructions;
      });
      expect(
        carried.some((machines) => machines.find((m) => m.plan.instructionRef === 'bank')?.pending?.providerRef),
      ).toBe(true);
      expect(carried.some((machines) => machines.find((m) => m.plan.instructionRef === 'own')?.unanswered)).toBe(true);
      // Each resumed where it was: one bank payment, one charge at the tenant's own provider found by
      // its look-up (never called again), and the declined card dunned under keys 1 to 4.
      const payments = await sandbox.ledger({ tenantId, orderRef: 'can-in-flight' });
      expect(payments.filter((p) => p.instructionRef === 'bank')).toHaveLength(1);
      expect(
        payments.filter((p) => p.instructionRef === 'card').map((p) => p.idempotencyKey.split(':').at(-1)),
      ).toEqual(['1', '2', '3', '4']);
      expect(provider.charges).toHaveLength(1);
      expect(provider.lookups).toHaveLength(1);
      expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
      recordHistory('continue-as-new-in-flight', runs[0]);
    } finally {
      await provider.close();
    }
  });

  it('resumes from a carried state a pay-now requested and a LATE retry, with the keys they had', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'can-crafted', [
      { instructionRef: 'pay-now' },
      { instructionRef: 'retry' },
    ]);
    const now = await env.currentTimeMs();
    // What a run hands on when it ends just after a customer's payment was taken, and during a dunning wait.
    const state = OrderEntity.initialState(input);
    const [payNow, retry] = state.instructions;
    Object.assign(payNow, { status: 'OPEN', toldStatus: 'OPEN', payNow: true, customerPaying: true });
    Object.assign(retry, {
      status: 'LATE',
      toldStatus: 'LATE',
      attempts: 1,
      declines: 1,
      keyAttempt: 2,
      retryAt: new Date(now + 3 * DAY_MS).toISOString(),
      failureCode: 'insufficient_funds',
    });
    Object.assign(state, { orderEvents: ['order.created'], dirty: [], orderDirty: false });
    const worker = await createWorker();
    const done = await worker.runUntil(async () =>
      (await start({ ...input, instructions: [] }, { continued: state })).result(),
    );
    expect(done.instructions.map((i) => [i.instructionRef, i.status, i.attempts])).toEqual([
      ['pay-now', 'SETTLED', 1],
      ['retry', 'SETTLED', 2],
    ]);
    const payments = await sandbox.ledger({ tenantId, orderRef: 'can-crafted' });
    expect(payments.map((p) => p.idempotencyKey.split(':').slice(-2).join(':')).sort()).toEqual([
      'pay-now:1',
      'retry:2',
    ]);
    // The customer's payment went out at once, long before its due date; the retry waited for its time.
    const byRef = new Map(done.instructions.map((i) => [i.instructionRef, Date.parse(i.settledAt!)]));
    expect(byRef.get('pay-now')!).toBeLessThan(Date.parse(input.instructions[0].openAt));
    expect(byRef.get('retry')!).toBeGreaterThanOrEqual(now + 3 * DAY_MS);
  });

  it('answers an update retried after a continue-as-new as taken: neither refused nor made twice', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'retried-across-runs', [{ instructionRef: 'a' }, { instructionRef: 'b' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      // About 14 events once started and 8 more per change: the second change finds the history long.
      const handle = await start(input, { continueAsNewAfterEvents: 20 });
      const cancelA = { args: [{ instructionRef: 'a' }] as [{ instructionRef: string }], updateId: 'api:cancel-a' };
      await handle.executeUpdate(cancelInstructionUpdate, cancelA);
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'b', amendment: { amountMinor: '1234' } }],
        updateId: 'api:amend-b',
      });
      const latest = env.client.workflow.getHandle(handle.workflowId);
      await eventually(
        () => latest.describe(),
        (d) => d.runId !== handle.firstExecutionRunId && d.status.name === 'RUNNING',
        { what: 'a continued run' },
      );
      const before = await latest.query(orderStateQuery);
      // The first answer lost, the client sends the cancel again under its id, to a run that never took it.
      await expect(latest.executeUpdate(cancelInstructionUpdate, cancelA)).resolves.toEqual({ projected: true });
      expect(await latest.query(orderStateQuery)).toEqual(before);
      expect(before.instructions.map((i) => [i.instructionRef, i.status, i.amountMinor])).toEqual([
        ['a', 'CANCELLED', '3000'],
        ['b', 'PENDING', '1234'],
      ]);
      // A cancel of its own (another id) is still refused: only the repeat skips the validator.
      await expectRefused(
        latest.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'a' }], updateId: 'api:cancel-a-2' }),
        /can no longer be cancelled/,
      );
      await latest.terminate('test over');
    });
  });

  it('asks an unanswering provider about the same key before paying, so the customer pays once', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'outage-1', [{ instructionRef: 'premium-1' }]);
    // A port with nothing listening yet: the provider is down when the instruction falls due.
    const port = await freePort();
    const worker = await createWorker({ sandboxUrl: `http://127.0.0.1:${port}` });
    let revived: RunningSandbox | undefined;
    try {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        const finished = handle.result();
        const late = await waitFor(
          handle,
          (v) => v.instructions[0].status === 'LATE',
          'instruction LATE after the provider stayed down',
        );
        expect(late.instructions[0].failureCode).toBe('provider_unavailable');
        revived = await startSandbox({ port });
        return finished;
      });
      expect(result.instructions[0].status).toBe('SETTLED');
      expect(result.instructions[0].attempts).toBeGreaterThanOrEqual(2);
      const payments = await revived!.ledger({ tenantId, orderRef: 'outage-1' });
      expect(payments.map((p) => p.idempotencyKey)).toEqual([`${tenantId}:outage-1:premium-1:1`]);
    } finally {
      await revived?.close();
    }
  });

  it('settles from the look-up when the provider took the charge its unanswered call made: no second call', async () => {
    await atOwnProvider({ loseAnswers: 8 }, 'lookup-finds', async ({ provider, tenantId, input, worker }) => {
      const result = await worker.runUntil(async () => (await start(input)).result());
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([`${tenantId}:lookup-finds:p:1`]);
      expect(provider.lookups).toEqual([`${tenantId}:lookup-finds:p:1`]);
      // Eight tries of the call, all unanswered; then the look-up, and nothing after it.
      expect(provider.requests.map((r) => r.method)).toEqual([...Array<string>(8).fill('POST'), 'GET']);
      expect(await scheduledActivities(input)).toEqual(['executePayment', 'lookupPayment']);
      await record('lookup-finds', orderWorkflowId(tenantId, 'lookup-finds'));
    });
  });

  it('calls again when its worker put the call off, no try taken, told if an earlier attempt may have reached the provider', async () => {
    // Put off twice, as a worker does when the account has its share of calls under way; the
    // second time after an attempt of the activity that may have reached the provider.
    const calls: ExecutePaymentInput[] = [];
    await atOwnProvider(
      { repeatedKey: 409 },
      'put-off',
      async ({ provider, tenantId, input, worker }) => {
        const result = await worker.runUntil(async () => (await start(input)).result());
        expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', attempts: 1 });
        const key = `${tenantId}:put-off:p:1`;
        expect(calls.map((c) => [c.idempotencyKey, c.keyMayHaveReached])).toEqual([
          [key, undefined],
          [key, undefined],
          [key, true],
        ]);
        expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
        expect(await scheduledActivities(input)).toEqual(['executePayment', 'executePayment', 'executePayment']);
        await record('put-off-called-again', orderWorkflowId(tenantId, 'put-off'));
      },
      { worker: { activities: putOffFirst(2, calls, (n) => n === 2) } },
    );
  });

  it('ends a call put off too often as unanswered: its key kept, the provider asked about it later, the customer paying once', async () => {
    const calls: ExecutePaymentInput[] = [];
    await atOwnProvider(
      { repeatedKey: 409 },
      'put-off-long',
      async ({ provider, tenantId, input, worker }) => {
        const result = await worker.runUntil(async () => (await start(input)).result());
        expect(result.instructions[0].status).toBe('SETTLED');
        const key = `${tenantId}:put-off-long:p:1`;
        // The first call and its ten put-offs; an hour on, the key looked up (none), then called again under it.
        expect(calls.map((c) => c.idempotencyKey)).toEqual(Array<string>(MAX_PUT_OFFS + 2).fill(key));
        expect(calls.at(-1)?.keyMayHaveReached).toBe(true);
        expect(provider.lookups).toEqual([key]);
        expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
        expect(await scheduledActivities(input)).toEqual([
          ...Array<string>(MAX_PUT_OFFS + 1).fill('executePayment'),
          'lookupPayment',
          'executePayment',
        ]);
      },
      { worker: { activities: putOffFirst(MAX_PUT_OFFS + 1, calls, () => false) } },
    );
  });

  it('calls again under the same key when the look-up finds no charge, and the customer pays once', async () => {
    await atOwnProvider({ hangWithoutCharging: 8 }, 'lookup-none', async ({ provider, tenantId, input, worker }) => {
      const result = await worker.runUntil(async () => (await start(input)).result());
      expect(result.instructions[0].status).toBe('SETTLED');
      const key = `${tenantId}:lookup-none:p:1`;
      expect(provider.charges.map((c) => c.idempotencyKey)).toEqual([key]);
      expect(provider.lookups).toEqual([key]);
      expect(provider.requests.map((r) => `${r.method} ${r.idempotencyKey ?? ''}`)).toEqual([
        ...Array<string>(8).fill(`POST ${key}`),
        'GET ',
        `POST ${key}`,
      ]);
      expect(await scheduledActivities(input)).toEqual(['executePayment', 'lookupPayment', 'executePayment']);
      await record('lookup-none', orderWorkflowId(tenantId, 'lookup-none'));
    });
  });

  it('keeps the key of an unanswered call when the provider will not say what it did (look-up 405): outcome unknown', async () => {
    await atOwnProvider(
      { loseAnswers: 8, lookup: 405 },
      'lookup-405',
      async ({ provider, tenantId, input, worker }) => {
        await worker.runUntil(async () => {
          const handle = await start(input);
          // Awaiting the result lets time skip (retries, the hourly look-up) while the test watches.
          const finished = handle.result().catch(() => undefined);
          const unknown = await waitFor(
            handle,
            (v) => v.instructions[0].failureCode === 'outcome_unknown',
            'the refused look-up leaves the outcome unknown',
          );
          // LATE, or being asked again already (time runs fast here): either way, not to be changed.
          expect(['LATE', 'PROCESSING']).toContain(unknown.instructions[0].status);
          await expectRefused(
            handle.executeUpdate(amendInstructionUpdate, {
              args: [{ instructionRef: 'p', amendment: { financialInstrumentId: 'card_other' } }],
            }),
            /may have moved money|is being paid/,
          );
          // An hour later: asked again, under the same key, and never paid anew.
          await eventually(
            () => Promise.resolve(provider.lookups.length),
            (n) => n >= 2,
            { what: 'asked again an hour later', timeoutMs: 60_000 },
          );
          expect(provider.charges).toHaveLength(1);
          expect(new Set(provider.lookups)).toEqual(new Set([`${tenantId}:lookup-405:p:1`]));
          expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
          // Only the provider's own answer under the key ends it: it settles, never charged again.
          provider.behaviour.lookup = 'answer';
          await finished;
          const done = await handle.query(orderStateQuery);
          expect(done.instructions[0]).toMatchObject({
            status: 'SETTLED',
            providerRef: provider.charges[0].providerRef,
          });
          expect(provider.charges).toHaveLength(1);
          expect(provider.requests.filter((r) => r.method === 'POST')).toHaveLength(8);
          await record('lookup-refused', handle.workflowId);
        });
      },
    );
  });

  it('counts a settlement a tenant admin resolves as collected, in its read model', async () => {
    await atOwnProvider(
      { loseAnswers: 8, lookup: 405 },
      'resolved-settled',
      async ({ provider, tenantId, input, worker }) => {
        await worker.runUntil(async () => {
          const handle = await start(input);
          const finished = handle.result().catch(() => undefined);
          await waitFor(
            handle,
            (v) => v.instructions[0].failureCode === 'outcome_unknown',
            'the refused look-up leaves the outcome unknown',
          );
          const [charge] = provider.charges;
          // Refused while the provider is being asked again (time runs fast here): resolved once that call has ended.
          await takenOnce(
            () =>
              handle.executeUpdate(resolveInstructionUpdate, {
                args: [{ instructionRef: 'p', outcome: 'SETTLED', providerRef: charge.providerRef }],
              }),
            /right now/,
          );
          const row = await eventually(
            () => orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'p' }),
            (i) => i.status === 'SETTLED',
            { what: 'the read model shows it settled', timeoutMs: 30_000 },
          );
          expect(row).toMatchObject({ providerRef: charge.providerRef, settledAmountMinor: 2500n });
          expect(provider.charges).toHaveLength(1);
          // Let it end on its own (its reversal window): terminated with a call out, it left the test
          // server's time-skipping locked for the tests after it.
          await finished;
          await record('resolved-settled-counted', handle.workflowId);
        });
      },
      { instruction: { instructionRef: 'p', amount: '25.00' } },
    );
  });

  it('takes a malformed answer (a reference of 200 characters) for no answer: same key, and the read model never stuck', async () => {
    await atOwnProvider(
      { answerOverrides: { providerRef: 'x'.repeat(200) } },
      'malformed',
      async ({ provider, tenantId, input, worker }) => {
        const result = await worker.runUntil(async () => {
          const handle = await start(input);
          const finished = handle.result();
          await waitFor(
            handle,
            (v) => v.instructions[0].failureCode === 'provider_unavailable',
            'unanswered after malformed answers',
          );
          provider.behaviour.answerOverrides = undefined;
          return finished;
        });
        // Settled from the look-up once the provider answered properly: the charge it took the first time.
        expect(result.instructions[0]).toMatchObject({
          status: 'SETTLED',
          providerRef: provider.charges[0].providerRef,
        });
        expect(provider.charges).toHaveLength(1);
        const [row] = await orm.em.fork().find(PaymentInstruction, { tenantId, instructionRef: 'p' });
        expect(row).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      },
    );
  });

  it.each(['answered at once', 'answered PENDING, then asked'] as const)(
    'believes no settlement of other money than asked (%s): outcome unknown, the key kept, until the provider says it right',
    async (how) => {
      const pending = how === 'answered PENDING, then asked';
      const orderRef = pending ? 'other-money-pending' : 'other-money';
      await atOwnProvider(
        { outcome: pending ? 'PENDING' : 'SETTLED' },
        orderRef,
        async ({ provider, input, worker }) => {
          // 0.01 EUR settled of the 30.00 EUR asked.
          const otherMoney = { amountMinor: '1', currency: 'EUR' };
          if (!pending) provider.behaviour.answerOverrides = otherMoney;
          const result = await worker.runUntil(async () => {
            const handle = await start(input);
            const finished = handle.result();
            if (pending) {
              await waitFor(handle, answeredPending, 'the payment PENDING');
              provider.charges[0].status = 'SETTLED';
              provider.behaviour.answerOverrides = otherMoney;
            }
            // LATE between its look-ups (PROCESSING while one is under way).
            await waitFor(
              handle,
              (v) => v.instructions[0].failureCode === 'outcome_unknown' && v.instructions[0].status === 'LATE',
              'the outcome unknown after a settlement of other money',
            );
            provider.behaviour.answerOverrides = undefined;
            return finished;
          });
          // Asked about under the same key once the provider stated no other money: the one charge.
          expect(result.instructions[0]).toMatchObject({
            status: 'SETTLED',
            providerRef: provider.charges[0].providerRef,
          });
          expect(provider.charges).toHaveLength(1);
          expect(provider.lookups.length).toBeGreaterThan(0);
          expect(new Set(provider.lookups)).toEqual(new Set([provider.charges[0].idempotencyKey]));
        },
      );
    },
  );

  it('takes a chargeback that came while its payment’s call was under way, once the call is answered', async () => {
    await atOwnProvider({}, 'charged-back-early', async ({ provider, input, worker }) => {
      await worker.runUntil(async () => {
        const handle = await start(input);
        let release!: () => void;
        provider.behaviour.holdPaymentAnswers = new Promise<void>((resolve) => (release = resolve));
        // To its due date: the provider takes the charge and holds its answer.
        await env.sleep(2 * DAY_MS);
        const [charge] = await eventually(
          () => provider.charges,
          (charges) => charges.length === 1,
          { what: 'the charge taken', timeoutMs: 30_000 },
        );
        // As a busy worker meets them: the chargeback first, then the call's answer.
        await handle.signal(providerResultSignal, {
          status: 'RETURNED',
          providerRef: charge.providerRef,
          kind: 'CHARGEBACK',
          code: 'fraudulent',
          appId: 'HTTP_CONNECTOR',
        });
        release();
        const view = await waitFor(
          handle,
          (v) => v.instructions[0].failureCode?.startsWith('charged_back:') === true,
          'the chargeback taken',
        );
        expect(view.instructions[0]).toMatchObject({
          status: 'FAILED',
          providerRef: charge.providerRef,
          failureCode: 'charged_back:fraudulent',
        });
        await record('charged-back-early', handle.workflowId);
        // To its end while its worker runs: a run left waiting would hold up the server's clock for the tests after it.
        await handle.result();
      });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('asks again at once about a payment of unknown outcome (answered with other money) when its callback comes', async () => {
    await atOwnProvider({}, 'unknown-called-back', async ({ provider, input, worker }) => {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        const unknown = await paymentUnknownAtProvider(provider, handle);
        // The reference the provider stated is kept, though its money is not believed.
        const [charge] = provider.charges;
        expect(unknown.instructions[0].providerRef).toBe(charge.providerRef);
        await handle.signal(providerResultSignal, {
          status: 'SETTLED',
          providerRef: charge.providerRef,
          appId: 'HTTP_CONNECTOR',
        });
        // Time skips only while the test sleeps (or awaits the result), so not by the hourly look-up: asked at once.
        await waitFor(
          handle,
          (v) => v.instructions[0].status === 'SETTLED',
          'settled by the look-up the callback prompted',
        );
        expect(provider.lookups).toEqual([charge.idempotencyKey]);
        // Asked only for a return: no marker (and no visibility write) for a settlement's callback.
        expect(await patchesOf(handle.workflowId)).not.toContain('return-of-unknown-kept');
        return handle.result();
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('takes a return that came for a payment of unknown outcome, though the provider then answered under its key that it settled', async () => {
    const returned = { status: 'RETURNED', kind: 'RETURN', code: 'account_closed' } as const;
    // The return came while the payment waited to be asked again, or while it was being asked.
    for (const orderRef of ['returned-while-unknown', 'returned-while-unknown-asked']) {
      await atOwnProvider({}, orderRef, async ({ provider, input, worker }) => {
        let workflowId = '';
        const result = await worker.runUntil(async () => {
          const handle = await start(input);
          workflowId = handle.workflowId;
          await paymentUnknownAtProvider(provider, handle);
          const [charge] = provider.charges;
          const callBack = (callback: { status: 'SETTLED' } | typeof returned) =>
            handle.signal(providerResultSignal, {
              ...callback,
              providerRef: charge.providerRef,
              appId: 'HTTP_CONNECTOR',
            });
          if (orderRef === 'returned-while-unknown') await callBack(returned);
          else {
            // The settlement's callback prompts the look-up; the return comes while it is under way.
            let release!: () => void;
            provider.behaviour.holdLookupAnswers = new Promise<void>((resolve) => (release = resolve));
            await callBack({ status: 'SETTLED' });
            await eventually(
              () => provider.lookups,
              (lookups) => lookups.length === 1,
              { what: 'the provider asked under the key', timeoutMs: 30_000 },
            );
            await callBack(returned);
            release();
          }
          // Its look-up answers SETTLED, as the provider's charge stands: settled, then taken back.
          await waitFor(handle, (v) => v.instructions[0].status === 'FAILED', 'the payment returned');
          return handle.result();
        });
        // Returned, not collected again for this code: not left as collected.
        expect(result.instructions[0], orderRef).toMatchObject({
          status: 'FAILED',
          providerRef: provider.charges[0].providerRef,
          failureCode: 'returned:account_closed',
        });
        expect(provider.lookups, orderRef).toEqual([provider.charges[0].idempotencyKey]);
        expect(provider.charges, orderRef).toHaveLength(1);
        expect(await patchesOf(workflowId), orderRef).toContain('return-of-unknown-kept');
        await record(orderRef, workflowId);
      });
    }
  });

  it('takes a return kept for a payment of unknown outcome when a tenant admin resolves it as settled', async () => {
    await atOwnProvider({}, 'returned-while-unknown-resolved', async ({ provider, tenantId, input, worker }) => {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentUnknownAtProvider(provider, handle);
        // Asked again, the provider cannot say: its look-up refused, the key "in use". Still unknown.
        provider.behaviour.lookup = 405;
        provider.behaviour.repeatedKey = 409;
        const [charge] = provider.charges;
        await returnCalledBack(handle, charge.providerRef, { kind: 'RETURN', code: 'account_closed' });
        const resolve = (providerRef?: string) =>
          handle.executeUpdate(resolveInstructionUpdate, {
            args: [
              providerRef
                ? { instructionRef: 'p', outcome: 'SETTLED', providerRef }
                : { instructionRef: 'p', outcome: 'NOT_PAID' },
            ],
          });
        // Under another reference, the return would be dropped: refused, naming the one returned.
        const refusedFor = await eventually(
          () =>
            resolve('own_another').then(
              () => 'taken',
              (err: Error) => (err.cause as Error | undefined)?.message ?? err.message,
            ),
          (why) => !/right now/.test(why),
          { what: 'the resolution looked at once the provider was asked', timeoutMs: 60_000 },
        );
        expect(refusedFor).toContain(`return of payment ${charge.providerRef}`);
        // Nor as not paid: the return says it settled (a disputed payment would be collected again).
        await expectRefused(resolve(), /so that payment settled/);
        await resolve(charge.providerRef);
        expect(provider.lookups).toEqual([charge.idempotencyKey]);
        const ended = await handle.result();
        await record('returned-while-unknown-resolved', handle.workflowId);
        return ended;
      });
      // Told settled (its settlement recorded for the export), then returned, then failed.
      const told = await eventually(
        () => orm.em.fork().find(OrderEvent, { tenantId, orderRef: 'returned-while-unknown-resolved' }),
        (events) => events.some((e) => e.type === 'instruction.failed'),
        { what: 'the events told', timeoutMs: 30_000 },
      );
      expect(told.map((e) => e.type)).toEqual(
        expect.arrayContaining(['instruction.settled', 'instruction.returned', 'instruction.failed']),
      );
      // Settled by the resolution, then taken back by the return kept meanwhile: not left as collected.
      expect(result.instructions[0]).toMatchObject({
        status: 'FAILED',
        providerRef: provider.charges[0].providerRef,
        failureCode: 'returned:account_closed',
      });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('collects again, under a new key, a payment of unknown outcome whose kept return is for a code collected again; a chargeback kept fails it', async () => {
    for (const kind of ['RETURN', 'CHARGEBACK'] as const) {
      await atOwnProvider({}, `kept-${kind.toLowerCase()}-of-unknown`, async ({ provider, input, worker }) => {
        const result = await worker.runUntil(async () => {
          const handle = await start(input);
          await paymentUnknownAtProvider(provider, handle);
          const [charge] = provider.charges;
          // The same code for both: the tenant's returns policy (RECOLLECT) collects a return of it again.
          await returnCalledBack(handle, charge.providerRef, { kind, code: 'insufficient_funds' });
          // Asked under the key, the provider says it settled: then it was taken back.
          await waitFor(
            handle,
            (v) => v.instructions[0].failureCode?.endsWith(':insufficient_funds') === true,
            'the kept return taken',
          );
          // Past the dunning schedule's first wait.
          await env.sleep(3 * DAY_MS);
          return handle.result();
        });
        expect(provider.lookups, kind).toEqual([provider.charges[0].idempotencyKey]);
        if (kind === 'RETURN') {
          // Collected again, once, under a key of its own.
          expect(provider.charges, kind).toHaveLength(2);
          expect(provider.charges[1].idempotencyKey, kind).not.toBe(provider.charges[0].idempotencyKey);
          expect(result.instructions[0], kind).toMatchObject({
            status: 'SETTLED',
            providerRef: provider.charges[1].providerRef,
          });
        } else {
          expect(provider.charges, kind).toHaveLength(1);
          expect(result.instructions[0], kind).toMatchObject({
            status: 'FAILED',
            failureCode: 'charged_back:insufficient_funds',
          });
        }
      });
    }
  });

  it('takes a return once when the provider answers under its key that the payment of unknown outcome was returned, its callback kept meanwhile', async () => {
    await atOwnProvider({}, 'returned-under-key', async ({ provider, tenantId, input, worker }) => {
      let workflowId = '';
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        workflowId = handle.workflowId;
        await paymentUnknownAtProvider(provider, handle);
        const [charge] = provider.charges;
        // Asked again under the key, the provider says the payment settled and was taken back: its
        // answer tells the return the callback told (a code the returns policy collects again).
        provider.behaviour.answerOverrides = { status: 'RETURNED', returnCode: 'insufficient_funds' };
        await returnCalledBack(handle, charge.providerRef, { kind: 'RETURN', code: 'insufficient_funds' });
        await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'returned:insufficient_funds',
          'the return the answer told taken',
        );
        provider.behaviour.answerOverrides = undefined;
        // Past the dunning schedule's first wait.
        await env.sleep(3 * DAY_MS);
        return handle.result();
      });
      // Collected again once, under a key of its own: the kept callback was the same return, not another.
      expect(provider.lookups).toEqual([provider.charges[0].idempotencyKey]);
      expect(provider.charges).toHaveLength(2);
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[1].providerRef });
      const told = await eventually(
        () => orm.em.fork().find(OrderEvent, { tenantId, orderRef: 'returned-under-key' }),
        (events) => events.filter((e) => e.type === 'instruction.settled').length === 2,
        { what: 'the events told', timeoutMs: 30_000 },
      );
      expect(told.filter((e) => e.type === 'instruction.returned')).toHaveLength(1);
      // The callback was kept (not dropped unseen), and its return was not taken apart from the answer's.
      expect(await patchesOf(workflowId)).toContain('return-of-unknown-kept');
      expect(
        workerLogLines.filter((line) => line.includes('is taken now') && line.includes('returned-under-key')),
      ).toEqual([]);
      expect(
        workerLogLines.filter((line) => line.includes('then ended otherwise') && line.includes('returned-under-key')),
      ).toEqual([]);
    });
  });

  it('takes a return kept for a payment of unknown outcome as the callback of the pending payment its provider then names under its key', async () => {
    await atOwnProvider({}, 'returned-while-unknown-pending', async ({ provider, input, worker }) => {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentUnknownAtProvider(provider, handle);
        const [charge] = provider.charges;
        // Asked again under the key, the provider says the payment is pending: the return kept meanwhile
        // is its callback (it settled, then was taken back), taken at once, with no status poll.
        charge.status = 'PENDING';
        await returnCalledBack(handle, charge.providerRef, { kind: 'RETURN', code: 'account_closed' });
        await waitFor(handle, (v) => v.instructions[0].status === 'FAILED', 'settled, then taken back');
        return handle.result();
      });
      expect(result.instructions[0]).toMatchObject({
        status: 'FAILED',
        providerRef: provider.charges[0].providerRef,
        failureCode: 'returned:account_closed',
      });
      expect(provider.lookups).toEqual([provider.charges[0].idempotencyKey]);
      const statusAsked = provider.requests.filter((r) => r.method === 'GET' && /^\/payments\/[^?]+$/.test(r.path));
      expect(statusAsked).toEqual([]);
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('drops a return kept for a payment of unknown outcome that its provider then says it declined, and an operator hears of it', async () => {
    await atOwnProvider({}, 'returned-while-unknown-declined', async ({ provider, input, worker }) => {
      const declined = await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentUnknownAtProvider(provider, handle);
        const [charge] = provider.charges;
        // Asked again under the key, the provider says that payment was declined after all.
        charge.status = 'DECLINED';
        provider.behaviour.outcome = { declined: 'do_not_honor', retryable: false };
        await returnCalledBack(handle, charge.providerRef, { kind: 'RETURN', code: 'account_closed' });
        const view = await waitFor(
          handle,
          (v) => v.instructions[0].failureCode === 'do_not_honor',
          'the decline under the key taken',
        );
        await handle.terminate('test over');
        return view;
      });
      // Nothing was taken, so nothing came back: the return is not applied, and an operator hears of it.
      expect(declined.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'do_not_honor' });
      const warned = await eventually(
        () =>
          workerLogLines.filter(
            (line) => line.includes('then ended otherwise') && line.includes('returned-while-unknown-declined'),
          ),
        (found) => found.length === 1,
        { what: 'the worker’s warning of the return not applied', timeoutMs: 30_000 },
      );
      expect(JSON.parse(warned[0])).toMatchObject({ level: 40 });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('lets a tenant admin resolve a payment whose provider then stated another reference, though a return of the first was kept', async () => {
    await atOwnProvider({}, 'returned-then-restated', async ({ provider, input, worker }) => {
      const result = await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentUnknownAtProvider(provider, handle);
        const [charge] = provider.charges;
        // Asked again under the key, the provider names another payment, with other money still.
        provider.behaviour.answerOverrides = { amountMinor: '1', currency: 'EUR', providerRef: 'own_restated' };
        await returnCalledBack(handle, charge.providerRef, { kind: 'CHARGEBACK', code: 'fraudulent' });
        await waitFor(
          handle,
          (v) => v.instructions[0].providerRef === 'own_restated' && v.instructions[0].status === 'LATE',
          'the outcome unknown under the reference stated now',
        );
        // The return kept is of the reference held before: it holds no resolution of this one back.
        await takenOnce(
          () =>
            handle.executeUpdate(resolveInstructionUpdate, {
              args: [{ instructionRef: 'p', outcome: 'SETTLED', providerRef: 'own_restated' }],
            }),
          /right now/,
        );
        return handle.result();
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: 'own_restated' });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('settles by a callback that came while the provider was asked, though its answer then stated other money', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result } = await paymentCalledBackWhileAsked(provider, 'callback-while-asked', {
        answer: 'other money',
        callback: { status: 'SETTLED' },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(result.instructions[0].failureCode).toBeUndefined();
      expect(provider.lookups).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  it('keeps the key of a payment declined by a callback that came while the provider was asked, its answer then settled with other money', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result, workflowId } = await paymentCalledBackWhileAsked(provider, 'declined-while-asked', {
        answer: 'other money',
        callback: { status: 'DECLINED', code: 'insufficient_funds', retryable: true },
        // Money moved, by the answer: not declined (a new key would charge again), but unknown.
        then: { is: (i) => i.failureCode === 'outcome_unknown', what: 'the outcome unknown' },
      });
      await record('declined-while-asked', workflowId);
      // Asked again under its key an hour later, and settled by the provider's answer to that.
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.lookups).toEqual([provider.charges[0].idempotencyKey]);
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('settles by a callback that came while the provider was asked, though its answer then said declined', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result } = await paymentCalledBackWhileAsked(provider, 'settled-while-asked', {
        answer: 'DECLINED',
        callback: { status: 'SETTLED' },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      expect(provider.charges).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('takes a return that came while the provider was asked about the pending payment, though its answer then said settled', async () => {
    const returned = { status: 'RETURNED', kind: 'RETURN', code: 'account_closed' } as const;
    // The return alone, or after the settlement's own callback (kept with it until it is applied).
    for (const [orderRef, callback] of [
      ['returned-while-asked', [returned]],
      ['settled-returned-while-asked', [{ status: 'SETTLED' } as const, returned]],
    ] as const) {
      const provider = await startHostileProvider({ outcome: 'PENDING' });
      try {
        const { result, workflowId } = await paymentCalledBackWhileAsked(provider, orderRef, {
          answer: 'SETTLED',
          callback: [...callback],
          then: { is: (i) => i.status !== 'PROCESSING', what: 'the payment ended' },
        });
        // Settled, then taken back (returned, not collected again for this code): not left as collected.
        expect(result.instructions[0], orderRef).toMatchObject({
          status: 'FAILED',
          providerRef: provider.charges[0].providerRef,
          failureCode: 'returned:account_closed',
        });
        expect(await patchesOf(workflowId), orderRef).toContain('return-while-asked-kept');
        expect(provider.charges).toHaveLength(1);
        await record(orderRef, workflowId);
      } finally {
        await provider.close();
      }
    }
  });

  it('settles by its answer of the money asked, though a callback that came while it was asked said declined, as before: no patch marker', async () => {
    const provider = await startHostileProvider({ outcome: 'PENDING' });
    try {
      const { result, workflowId } = await paymentCalledBackWhileAsked(provider, 'answer-settled-while-asked', {
        answer: 'SETTLED',
        callback: { status: 'DECLINED', code: 'insufficient_funds', retryable: true },
      });
      expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef: provider.charges[0].providerRef });
      // Unchanged by the patch for a contrary callback, so no marker (and no visibility write) for it.
      expect(await patchesOf(workflowId)).not.toContain('money-moved-beats-not-moved');
    } finally {
      await provider.close();
    }
  });

  it('keeps a PENDING payment whose provider refuses to say how it ended waiting for its callback, which settles it', async () => {
    await atOwnProvider(
      { outcome: 'PENDING' },
      'refused-then-called-back',
      async ({ provider, tenantId, input, worker }) => {
        const result = await worker.runUntil(async () => {
          const handle = await start(input);
          const providerRef = await paymentPendingAtProvider(handle);
          await statusPollRefused(provider, handle);
          // Shown as one a tenant admin may resolve, in the read model, not only in the worker's log.
          const shown = await eventually(
            () => orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'p' }),
            (row) => row.failureCode != null,
            { what: 'the refusal shown', timeoutMs: 30_000 },
          );
          expect(shown).toMatchObject({
            status: 'PROCESSING',
            failureCode: 'status_refused:provider_rejected:http_404',
          });
          await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef, appId: 'HTTP_CONNECTOR' });
          return handle.result();
        });
        expect(result.instructions[0]).toMatchObject({
          status: 'SETTLED',
          providerRef: provider.charges[0].providerRef,
        });
        // The refusal is no longer shown once its callback ended it.
        expect(result.instructions[0].failureCode).toBeUndefined();
        expect(provider.lookups).toEqual([]);
      },
    );
  });

  it('lets a tenant admin resolve a PENDING payment once its provider refuses to say how it ended, and not before', async () => {
    await atOwnProvider({ outcome: 'PENDING' }, 'refused-then-resolved', async ({ provider, input, worker }) => {
      await worker.runUntil(async () => {
        const handle = await start(input);
        await paymentPendingAtProvider(handle);
        const resolve = () =>
          handle.executeUpdate(resolveInstructionUpdate, { args: [{ instructionRef: 'p', outcome: 'NOT_PAID' }] });
        // PENDING at its provider, which will say how it ends.
        await expectRefused(resolve(), /has no payment of unknown outcome to resolve/);
        await statusPollRefused(provider, handle);
        await takenOnce(resolve, /no payment of unknown outcome|right now/);
        const view = await handle.query(orderStateQuery);
        expect(view.instructions[0]).toMatchObject({ status: 'LATE', failureCode: 'resolved_not_paid' });
        await handle.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'p' }] });
        await handle.result();
        await record('pending-refused-resolved', handle.workflowId);
      });
      expect(provider.charges).toHaveLength(1);
    });
  });

  it('reads no more than 64 KB of a provider’s answer that does not end, and keeps the key until it answers', async () => {
    await atOwnProvider(
      { padAnswersWith: 100 * 1024 * 1024 },
      'huge',
      async ({ provider, tenantId, input, worker }) => {
        await worker.runUntil(async () => {
          const handle = await start(input);
          const finished = handle.result().catch(() => undefined);
          await waitFor(
            handle,
            (v) => v.instructions[0].failureCode === 'provider_unavailable',
            'unanswered after huge answers',
          );
          provider.behaviour.padAnswersWith = 0;
          await finished;
        });
        expect(provider.charges).toHaveLength(1);
        expect(new Set(provider.requests.filter((r) => r.method === 'POST').map((r) => r.idempotencyKey))).toEqual(
          new Set([`${tenantId}:huge:p:1`]),
        );
        // Each answer was given up early: of 100 MB, what the socket's buffers took at most.
        expect(provider.paddingSent.length).toBeGreaterThanOrEqual(8);
        for (const sent of provider.paddingSent) expect(sent).toBeLessThan(16 * 1024 * 1024);
      },
    );
  });

  it('settles a PENDING payment by its callback, and a repeated callback changes nothing', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'bank-cb',
      [{ instructionRef: 'debit-1', financialInstrumentId: 'bank_ok' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      // Time runs on its own until the result is awaited: the order stays PENDING at the provider meanwhile.
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      expect(pending.instructions[0].status).toBe('PROCESSING');
      const providerRef = pending.instructions[0].providerRef!;
      await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef });
      await handle.signal(providerResultSignal, {
        status: 'DECLINED',
        providerRef,
        code: 'late_duplicate',
        retryable: false,
      });
      const done = await handle.result();
      expect(done.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef, attempts: 1 });
      await record('bank-callback', handle.workflowId);
    });
  });

  it('takes a PENDING payment’s result only from the app paying it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'foreign-cb',
      [{ instructionRef: 'debit-1', financialInstrumentId: 'bank_no_callback' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      const providerRef = pending.instructions[0].providerRef!;
      // Another app's word on this payment, then its own app's: only the second counts.
      await handle.signal(providerResultSignal, {
        status: 'DECLINED',
        providerRef,
        code: 'account_closed',
        retryable: false,
        appId: 'HTTP_CONNECTOR',
      });
      await handle.signal(providerResultSignal, { status: 'SETTLED', providerRef, appId: 'SANDBOX_BANK' });
      const done = await handle.result();
      expect(done.instructions[0]).toMatchObject({ status: 'SETTLED', providerRef, attempts: 1 });
      await record('foreign-callback', handle.workflowId);
    });
  });

  it('asks the provider for the result of a PENDING payment whose callback never comes', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'silent-bank',
      [{ instructionRef: 'debit-1', amount: '80.00', country: 'NL', financialInstrumentId: 'bank_no_callback' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const result = await runOrder(input);
    expect(result.instructions[0]).toMatchObject({ status: 'SETTLED', appId: 'SANDBOX_BANK', attempts: 1 });
    const payments = await sandbox.ledger({ tenantId, orderRef: 'silent-bank' });
    expect(payments.map((p) => [p.status, p.appId])).toEqual([['SETTLED', 'SANDBOX_BANK']]);
    expect(
      Date.parse(result.instructions[0].settledAt!) - Date.parse(input.instructions[0].dueAt),
    ).toBeGreaterThanOrEqual(5 * 60_000);
  });

  it('collects in a database outage’s first minute, and the read model catches up when it is back', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const later = new Date((await env.currentTimeMs()) + 10 * DAY_MS).toISOString();
    const input = await storeOrder(tenantId, 'db-outage', [
      { instructionRef: 'before' },
      { instructionRef: 'during', dueDate: later },
    ]);
    const proxy = await startTcpProxy(new URL(lane().databaseUrl));
    // Its lost connections are expected here: not worth a warning in the test output.
    const proxiedOrm = await openDatabase({
      url: proxy.url,
      poolSize: inject('databasePoolSize'),
      onWarning: () => undefined,
    });
    try {
      const worker = await createWorker({ orm: proxiedOrm });
      await worker.runUntil(async () => {
        const handle = await start(input);
        // The first payment reads the tenant's credentials while the database answers; then it goes away.
        // The second is paid with them, read within the minute (real time: the server skips only
        // workflow time), though where its key goes cannot be kept.
        await env.sleep(3 * DAY_MS);
        await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the first payment');
        await eventually(
          () => orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' }),
          (n) => n === 1,
          { what: 'its projection' },
        );
        proxy.cut();
        await env.sleep(10 * DAY_MS);
        await waitFor(handle, (v) => v.instructions[1].status === 'SETTLED', 'the second payment, during the outage');
        expect(await sandbox.ledger({ tenantId, orderRef: 'db-outage' })).toHaveLength(2);
        expect(await orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' })).toBe(1);
        proxy.restore();
        await handle.result();
        // The write the database did not take locally went to the task queue, which retried it until it was back.
        const history = await handle.fetchHistory();
        recordHistory('projected-after-local-failure', history);
        const events = history.events!;
        const failedLocally = events.findIndex(
          (e) =>
            e.markerRecordedEventAttributes?.markerName === 'core_local_activity' &&
            e.markerRecordedEventAttributes.failure,
        );
        const queued = events.findIndex(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'projectOrder',
        );
        expect(failedLocally).toBeGreaterThan(0);
        expect(queued).toBeGreaterThan(failedLocally);
      });
      const rows = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
      expect(rows.map((r) => r.status)).toEqual(['SETTLED', 'SETTLED']);
    } finally {
      await proxiedOrm.close().catch(() => undefined);
      await proxy.close();
    }
  });
});
