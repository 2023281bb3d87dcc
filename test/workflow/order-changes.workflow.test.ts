// The payment-order workflow on the time-skipping server: changes to a running order (cancel, amend, add,
// pay early), business days, a 500-instruction order, the reversal window, arrears expiry and refunds.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { InstrumentStore } from '../../customers/instrument-store.js';
import { PaymentInstruction, PaymentInstrument, PaymentRefund } from '../../db/entities/index.js';
import { SecretBox } from '../../db/secret-box.js';
import { isBusinessDay } from '../../domain/business-days.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { MAX_REFUNDS_PER_ORDER } from '../../orders/contract/limits.js';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
  payInstructionUpdate,
  createRefundUpdate,
  orderStateQuery,
  providerResultSignal,
  resolveRefundUpdate,
  refundResultSignal,
  replacedSecretReturnUpdate,
  retryInstructionUpdate,
} from '../../orders/contract/messages.js';
import { ProviderResults } from '../../orders/provider-results.js';
import type { ProviderResult } from '../../domain/payment-outcome.js';
import { endSignal } from './fixtures/order-of-before.workflow.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { eventually } from '../support/eventually.js';
import { OrderEntity } from '../../orders/workflow/order-entity.js';
import { MANDATE_NOT_ACTIVE } from '../../orders/workflow/instruction-machine.js';
import { MANDATE_CHECK_KEEPS_ARREARS_START } from '../../orders/workflow/order-patches.js';
import { MANDATE_RECHECK_DELAYS_MS } from '../../orders/workflow/provider-waits.js';
import { startHostileProvider } from '../support/hostile-provider.js';
import { createTenantRows, resolvedTo } from '../support/tenant-rows.js';

import {
  DAY_MS,
  endedOnFailure,
  env,
  orm,
  sandbox,
  masterKeys,
  storeOrder,
  createWorker,
  start,
  waitFor,
  runsOf,
  collectedByOwnProvider,
  refundPendingAtProvider,
  refundUnknownAtProvider,
  calledBackWhileAsked,
  statusPollRefused,
  takenOnce,
  expectRefused,
  twoOptions,
  record,
  patchesOf,
} from './order-harness.js';

describe('payment-order workflow on the time-skipping server', () => {
  it('cancels an instruction waiting LATE, and the order with it', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'late-cancel', [
      { instructionRef: 'no-instrument', financialInstrumentId: undefined },
    ]);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(3 * DAY_MS);
      await waitFor(handle, (v) => v.instructions[0].status === 'LATE', 'LATE without an instrument');
      await handle.executeUpdate(cancelInstructionUpdate, { args: [{ instructionRef: 'no-instrument' }] });
      return handle.result();
    });
    expect(result).toMatchObject({
      status: 'CANCELLED',
      instructions: [{ status: 'CANCELLED', failureCode: 'no_financial_instrument' }],
    });
    expect(await sandbox.ledger({ tenantId, orderRef: 'late-cancel' })).toEqual([]);
    await record('cancel-late', orderWorkflowId(tenantId, 'late-cancel'));
  });

  it('re-plans an amended due date at once: moved later it does not fire at the old date, moved earlier it fires at the new one', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'amend-race', [
      { instructionRef: 'later' },
      { instructionRef: 'earlier', dueDate: new Date((await env.currentTimeMs()) + 30 * DAY_MS).toISOString() },
    ]);
    const oldDue = Date.parse(input.instructions[0].dueAt);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      // Up to a minute before the due date, then the race: the amendment lands first.
      await env.sleep(oldDue - (await env.currentTimeMs()) - 60_000);
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'later', amendment: { dueAt: new Date(oldDue + 10 * DAY_MS).toISOString() } }],
      });
      await handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: 'earlier', amendment: { dueAt: new Date(oldDue + DAY_MS).toISOString() } }],
      });
      await expectRefused(
        handle.executeUpdate(amendInstructionUpdate, {
          args: [{ instructionRef: 'later', amendment: { openAt: new Date(oldDue).toISOString() } }],
        }),
        /open already/,
      );
      return handle.result();
    });
    const [later, earlier] = result.instructions;
    expect(Date.parse(later.settledAt!)).toBeGreaterThanOrEqual(oldDue + 10 * DAY_MS);
    expect(Date.parse(earlier.settledAt!)).toBeGreaterThanOrEqual(oldDue + DAY_MS);
    expect(Date.parse(earlier.settledAt!)).toBeLessThan(oldDue + 2 * DAY_MS);
    expect((await sandbox.ledger({ tenantId, orderRef: 'amend-race' })).map((p) => p.instructionRef)).toEqual([
      'earlier',
      'later',
    ]);
    await record('amend', orderWorkflowId(tenantId, 'amend-race'));
  });

  it('charges a bank debit due on a Sunday on the Monday, at the time it was due', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    // The first Sunday at least three days ahead whose Monday is a business day in France.
    let sunday = new Date((await env.currentTimeMs()) + 3 * DAY_MS);
    sunday.setUTCHours(10, 0, 0, 0);
    const day = (at: Date) => at.toISOString().slice(0, 10);
    while (sunday.getUTCDay() !== 0 || !isBusinessDay(day(new Date(sunday.getTime() + DAY_MS)), 'FR'))
      sunday = new Date(sunday.getTime() + DAY_MS);
    const monday = sunday.getTime() + DAY_MS;
    const input = await storeOrder(
      tenantId,
      'sunday',
      [{ instructionRef: 'debit', dueDate: sunday.toISOString(), financialInstrumentId: 'bank_ok' }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
      { businessDayRule: 'FOLLOWING' },
    );
    expect(input.instructions[0]).toMatchObject({
      dueAt: sunday.toISOString(),
      chargeAt: new Date(monday).toISOString(),
    });
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      // Sunday passes with the instruction OPEN and nothing asked of the bank.
      await env.sleep(sunday.getTime() + 60 * 60_000 - (await env.currentTimeMs()));
      const sundayView = await waitFor(handle, (v) => v.instructions[0].status === 'OPEN', 'open on the Sunday');
      expect(sundayView.instructions[0]).toMatchObject({ attempts: 0, nextActionAt: new Date(monday).toISOString() });
      await env.sleep(DAY_MS);
      const called = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the bank called');
      await handle.signal(providerResultSignal, {
        status: 'SETTLED',
        providerRef: called.instructions[0].providerRef!,
      });
      await handle.result();
    });
    const history = await env.client.workflow.getHandle(orderWorkflowId(tenantId, 'sunday')).fetchHistory();
    const call = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executePayment',
    )!;
    const calledAt = Number(call.eventTime!.seconds) * 1000;
    expect(calledAt).toBeGreaterThanOrEqual(monday);
    expect(calledAt).toBeLessThan(monday + 60 * 60_000);
  });

  it('takes instructions added to a live order, and a customer’s early payment in the open window', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'add-pay', [
      {
        instructionRef: 'first',
        dueDate: new Date((await env.currentTimeMs()) + 40 * DAY_MS).toISOString(),
        financialInstrumentId: undefined,
      },
    ]);
    const worker = await createWorker();
    const result = await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      await waitFor(handle, (v) => v.instructions[0].status === 'OPEN', 'the first instruction OPEN');
      const now = await env.currentTimeMs();
      const plan = {
        ...input.instructions[0],
        instructionId: randomUUID(),
        instructionRef: 'second',
        financialInstrumentId: 'card_ok',
        openAt: new Date(now + DAY_MS).toISOString(),
        dueAt: new Date(now + 2 * DAY_MS).toISOString(),
      };
      await handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: { added: 'yes' } }] });
      await expectRefused(handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: {} }] }), /already/);
      // Paid now, with the card option, weeks before its due date.
      await handle.executeUpdate(payInstructionUpdate, {
        args: [
          { instructionRef: 'first', appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
        ],
      });
      const paid = await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the early payment');
      expect(Date.parse(paid.instructions[0].settledAt!)).toBeLessThan(Date.parse(input.instructions[0].dueAt));
      await expectRefused(
        handle.executeUpdate(payInstructionUpdate, {
          args: [
            { instructionRef: 'first', appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' },
          ],
        }),
        /SETTLED/,
      );
      return handle.result();
    });
    expect(result.instructions.map((i) => [i.instructionRef, i.status])).toEqual([
      ['first', 'SETTLED'],
      ['second', 'SETTLED'],
    ]);
    const rows = await orm.em.fork().find(PaymentInstruction, { tenantId }, { orderBy: { position: 'asc' } });
    expect(rows.map((r) => [r.instructionRef, r.status, r.position])).toEqual([
      ['first', 'SETTLED', 0],
      ['second', 'SETTLED', 1],
    ]);
    expect(rows[1].metadata).toEqual({ added: 'yes' });
    await record('add-and-pay', orderWorkflowId(tenantId, 'add-pay'));
  });

  it('refuses to cancel an order while a payment is under way', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(
      tenantId,
      'busy',
      [
        { instructionRef: 'debit-1', financialInstrumentId: 'bank_ok' },
        { instructionRef: 'debit-2', dueDate: new Date((await env.currentTimeMs()) + 90 * DAY_MS).toISOString() },
      ],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const pending = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the PENDING answer');
      await expectRefused(handle.executeUpdate(cancelOrderUpdate, { args: [] }), /being paid/);
      await expectRefused(
        handle.executeUpdate(amendInstructionUpdate, {
          args: [{ instructionRef: 'debit-1', amendment: { amountMinor: '1' } }],
        }),
        /being paid/,
      );
      await handle.signal(providerResultSignal, {
        status: 'SETTLED',
        providerRef: pending.instructions[0].providerRef!,
      });
      await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'the first settled');
      await handle.executeUpdate(cancelOrderUpdate, { args: [] });
      const done = await handle.result();
      expect(done).toMatchObject({
        status: 'CANCELLED',
        instructions: [{ status: 'SETTLED' }, { status: 'CANCELLED' }],
      });
    });
  });

  it('refuses an instruction added in the same moment as the order is cancelled: nothing runs in a cancelled order', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'cancel-then-add', [{ instructionRef: 'debit-1' }]);
    const [added] = (await storeOrder(tenantId, 'cancel-then-add-plan', [{ instructionRef: 'debit-2' }])).instructions;
    // Both changes wait for the workflow's first task: the worker starts only once both are sent.
    const handle = await start(input);
    const cancelled = handle.executeUpdate(cancelOrderUpdate, { args: [] });
    const add = handle.executeUpdate(addInstructionUpdate, { args: [{ plan: added, metadata: {} }] }).then(
      () => undefined,
      (err: unknown) => err,
    );
    // A later request on the same connection: once it is answered, the server holds both updates.
    await handle.describe();
    const worker = await createWorker();
    const done = await worker.runUntil(async () => {
      await cancelled;
      const refused = await add;
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(((refused as WorkflowUpdateFailedError).cause as Error).message).toMatch(/being cancelled/);
      return handle.result();
    });
    expect(done).toMatchObject({
      status: 'CANCELLED',
      instructions: [{ instructionRef: 'debit-1', status: 'CANCELLED' }],
    });
  });

  it('completes a 500-instruction order with every run under 10,000 events and no payload over 2 MB', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const first = (await env.currentTimeMs()) + DAY_MS;
    // 500 instructions falling due in 50 weeks, ten a week. Each a minute after the one before:
    // timers firing at one instant make the Java time-skipping server lose a workflow task now
    // and then (its history ends at WorkflowTaskStarted; the task neither completes nor times out).
    const count = Number(process.env.BIG_ORDER_SIZE ?? 500);
    const specs = Array.from({ length: count }, (_, n) => {
      const open = first + Math.floor(n / 10) * 7 * DAY_MS + (n % 10) * 60_000;
      return {
        instructionRef: `i-${n}`,
        openDate: new Date(open).toISOString(),
        dueDate: new Date(open + DAY_MS).toISOString(),
        amount: '1.00',
      };
    });
    const input = await storeOrder(tenantId, 'big-500', specs);
    const worker = await createWorker();
    const { view, runs } = await worker.runUntil(async () => {
      const handle = await start(input);
      const finished = await handle.result();
      return { view: finished, runs: await runsOf(handle.workflowId, handle.firstExecutionRunId) };
    });
    expect(view.status).toBe('COMPLETED');
    expect(view.instructions.filter((i) => i.status === 'SETTLED')).toHaveLength(count);
    expect(runs.length).toBeGreaterThan(1);
    for (const run of runs) {
      expect(run.events!.length).toBeLessThan(10_000);
      for (const event of run.events!) {
        expect(proto.temporal.api.history.v1.HistoryEvent.encode(event).finish().length).toBeLessThan(2 * 1024 * 1024);
      }
    }
    expect(await sandbox.ledger({ tenantId, orderRef: 'big-500' })).toHaveLength(count);
    expect(await orm.em.fork().count(PaymentInstruction, { tenantId, status: 'SETTLED' })).toBe(count);
  }, 300_000);

  /** The card app's return of a settled payment for insufficient funds, as the API hands on its verified callback. */
  const cardReturned = (providerRef: string) =>
    ({ status: 'RETURNED', providerRef, kind: 'RETURN', code: 'insufficient_funds', appId: 'SANDBOX_CARD' }) as const;

  it('stays open through the card’s reversal window: a return eight weeks after settling is collected again, and the run ends when the window closes', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'return-8w', [{ instructionRef: 'premium-1' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
      const { providerRef, settledAt } = settled.instructions[0];
      await env.sleep(8 * 7 * DAY_MS);
      // As the API hands on a verified callback of the card's app.
      await handle.signal(providerResultSignal, cardReturned(providerRef!));
      const late = await waitFor(handle, (v) => v.status === 'ACTIVE', 'the order active again');
      expect(late.instructions[0]).toMatchObject({ status: 'LATE', failureCode: 'returned:insufficient_funds' });
      const view = await handle.result();
      expect(view.status).toBe('COMPLETED');
      const payments = (await sandbox.ledger({ tenantId, orderRef: 'return-8w' })).filter((p) => p.kind === 'PAYMENT');
      expect(payments.map((p) => p.idempotencyKey.split(':').at(-1))).toEqual(['1', '2']);
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
      expect(stored).toMatchObject({ status: 'SETTLED', settledAmountMinor: 6000n, returnedAmountMinor: 3000n });
      expect(stored.returnedAt!.getTime() - Date.parse(settledAt!)).toBeGreaterThanOrEqual(8 * 7 * DAY_MS);
      // The run ended when the card's 120 days after the second settlement had passed, not before.
      expect((await env.currentTimeMs()) - stored.settledAt!.getTime()).toBeGreaterThanOrEqual(120 * DAY_MS);
      const history = await handle.fetchHistory();
      const timers = (history.events ?? []).map((e) =>
        Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0),
      );
      expect(Math.max(...timers)).toBeGreaterThanOrEqual(119 * 24 * 3600);
      await record('return-recollected', handle.workflowId);
    });
  });

  // Its history, and `return-under-replaced-secret-before-patch` (the same steps recorded on 3fba382, the
  // code before the mark: the return collected again), are replayed by replay.test.ts.
  it('fails a return told only under a callback secret replaced since, though its code would be collected again', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'return-old-secret', [{ instructionRef: 'premium-1' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await endedOnFailure(handle, async () => {
        await env.sleep(2 * DAY_MS);
        const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
        // As the API hands on a return verified only by the merchant key the tenant replaced since.
        await handle.signal(providerResultSignal, {
          ...cardReturned(settled.instructions[0].providerRef!),
          underReplacedSecret: true,
        });
        const failed = await waitFor(handle, (v) => v.status === 'COMPLETED_WITH_FAILURES', 'the return taken');
        expect(failed.instructions[0]).toMatchObject({
          status: 'FAILED',
          failureCode: 'returned_replaced_secret:insufficient_funds',
        });
        // Past the first dunning delay (a day): nothing collected again.
        await env.sleep(3 * DAY_MS);
        const payments = (await sandbox.ledger({ tenantId, orderRef: 'return-old-secret' })).filter(
          (p) => p.kind === 'PAYMENT',
        );
        expect(payments).toHaveLength(1);
        await record('return-under-replaced-secret', handle.workflowId);
        // Run to its end (the card's reversal window), so that no timer of it holds the server's clock for the next test.
        expect((await handle.result()).instructions[0].status).toBe('FAILED');
      });
    });
  });

  /** A verified callback's result (its row's id made up), handed to the order's workflow as the API does. */
  const handOn = (
    tenantId: string,
    orderRef: string,
    result: ProviderResult,
    { rowId = randomUUID(), log = pino({ level: 'silent' }) } = {},
  ) =>
    new ProviderResults({ orm, temporal: env.client, logger: log }).deliver(
      rowId,
      'SANDBOX_CARD',
      { tenantId, orderRef, instructionRef: 'premium-1', providerRef: result.providerRef },
      { kind: 'payment', result },
      log,
    );

  // Its history is replayed by replay.test.ts.
  it('takes a return under a replaced callback secret as the API hands it on, by update, and refuses any other result so', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'return-old-secret-update', [{ instructionRef: 'premium-1' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await endedOnFailure(handle, async () => {
        await env.sleep(2 * DAY_MS);
        const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
        const providerRef = settled.instructions[0].providerRef!;
        // Only a marked return comes by the update: anything else is refused, and changes nothing.
        const unmarked = handle.executeUpdate(replacedSecretReturnUpdate, { args: [cardReturned(providerRef)] });
        await expect(unmarked).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
        expect((await handle.query(orderStateQuery)).instructions[0].status).toBe('SETTLED');
        const returned = { ...cardReturned(providerRef), underReplacedSecret: true as const };
        // Handed on twice under its row (a provider sending it again): one update, taken once.
        const rowId = randomUUID();
        await handOn(tenantId, input.orderRef, returned, { rowId });
        await handOn(tenantId, input.orderRef, returned, { rowId });
        const accepted = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
          const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
          return update ? [[update.meta?.updateId, update.input?.name]] : [];
        });
        expect(accepted).toEqual([[`replaced-secret-return:${rowId}`, 'replacedSecretReturn']]);
        // Taken before the hand-over was answered.
        expect((await handle.query(orderStateQuery)).instructions[0]).toMatchObject({
          status: 'FAILED',
          failureCode: 'returned_replaced_secret:insufficient_funds',
        });
        await env.sleep(3 * DAY_MS);
        const payments = (await sandbox.ledger({ tenantId, orderRef: input.orderRef })).filter(
          (p) => p.kind === 'PAYMENT',
        );
        expect(payments).toHaveLength(1);
        await record('return-under-replaced-secret-update', handle.workflowId);
        expect((await handle.result()).instructions[0].status).toBe('FAILED');
        // Sent again once the run has ended (the key verifies a week past the card's window): kept and
        // answered, as any result for a finished order, not refused for ever.
        await handOn(tenantId, input.orderRef, returned);
      });
    });
  });

  it('hands a return under a replaced callback secret to no worker that cannot read its mark: refused (sent again), nothing written', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const taskQueue = 'orders-of-before';
    const workflowsPath = fileURLToPath(new URL('./fixtures/order-of-before.workflow.ts', import.meta.url));
    const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
    const before = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { code } });
    await before.runUntil(async () => {
      const handle = await env.client.workflow.start('paymentOrderWorkflow', {
        workflowId: orderWorkflowId(tenantId, 'of-before'),
        taskQueue,
      });
      await endedOnFailure(handle, async () => {
        const { logger: log, lines } = capturingLogger('api', 'warn');
        const deliver = (result: ProviderResult) => handOn(tenantId, 'of-before', result, { log });
        const marked = { ...cardReturned('pay_before'), underReplacedSecret: true as const };
        await expect(deliver(marked)).rejects.toMatchObject({ code: 'workflow_unavailable' });
        // Refused by the worker (it knows no such update), not given up on for want of an answer.
        expect(lines.join('')).toContain('No registered handler for update: replacedSecretReturn');
        // An unmarked result goes as a signal, which it takes.
        await deliver(cardReturned('pay_before'));
        await handle.signal(endSignal);
        expect(await handle.result()).toEqual(['RETURNED']);
        const history = await handle.fetchHistory();
        const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        expect(updates).toHaveLength(0);
      });
    });
  });

  it('expires arrears with nothing planned after 30 days: FAILED expired, the order COMPLETED_WITH_FAILURES, retryable meanwhile', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'arrears-30d', [
      { instructionRef: 'no-card', financialInstrumentId: undefined },
    ]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const late = await waitFor(handle, (v) => v.instructions[0].status === 'LATE', 'no instrument at its due date');
      expect(late.instructions[0].nextActionAt).toBeDefined();
      await env.sleep(31 * DAY_MS);
      const failed = await waitFor(handle, (v) => v.status === 'COMPLETED_WITH_FAILURES', 'the arrears expired');
      expect(failed.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'expired' });
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'no-card' });
      const waited = stored.failedAt!.getTime() - stored.lateAt!.getTime();
      expect(waited).toBeGreaterThanOrEqual(30 * DAY_MS);
      expect(waited).toBeLessThan(30 * DAY_MS + 60_000);
      // Retried with an instrument while the order is open: collected, and the order completes.
      await handle.executeUpdate(retryInstructionUpdate, {
        args: [{ instructionRef: 'no-card', financialInstrumentId: 'card_ok' }],
      });
      const view = await handle.result();
      expect(view.status).toBe('COMPLETED');
      expect(view.instructions[0].status).toBe('SETTLED');
      await record('arrears-expired', handle.workflowId);
    });
  });

  it('expires a debit refused for want of its mandate 30 days after the refusal, though its mandate was checked for a day more', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const em = orm.em.fork();
    const account = new InstrumentStore(SecretBox.fromMasterKeys(masterKeys)).add(em, tenantId, 'SANDBOX_BANK', {
      token: 'bank_ok',
      paymentMethod: 'BANK_DEBIT',
      display: { maskedIban: 'FR76 •••• 0189', holderName: 'Ada Lovelace' },
      mandate: { mandateRef: `MDT-${randomUUID()}`, status: 'PENDING', signedAt: new Date().toISOString() },
    });
    await em.flush();
    const input = await storeOrder(
      tenantId,
      'mandate-never-confirmed',
      [{ instructionRef: 'debit', financialInstrumentId: undefined, instrumentId: account.id }],
      resolvedTo('SANDBOX_BANK', 'BANK_DEBIT'),
    );
    const checksMs = MANDATE_RECHECK_DELAYS_MS.reduce((sum, ms) => sum + ms, 0);
    expect(checksMs).toBeGreaterThan(DAY_MS);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const refused = await waitFor(
        handle,
        (v) => v.instructions[0].failureCode === MANDATE_NOT_ACTIVE,
        'the debit refused for want of the mandate',
      );
      const { lateAt } = await em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'debit' });
      expect(refused.instructions[0]).toMatchObject({ status: 'LATE', attempts: 1 });
      // Every check of the mandate made, each finding it still pending: nothing sent, the arrears' start kept.
      await env.sleep(checksMs + DAY_MS);
      const checked = await waitFor(
        handle,
        (v) => v.instructions[0].attempts === 1 + MANDATE_RECHECK_DELAYS_MS.length,
        'the mandate checked on its schedule',
      );
      expect(checked.instructions[0].status).toBe('LATE');
      const row = await eventually(
        () => em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'debit' }),
        (i) => i.attempts === checked.instructions[0].attempts,
        { what: 'the checks projected' },
      );
      expect(row.lateAt).toEqual(lateAt);
      await env.sleep(29 * DAY_MS);
      const failed = await waitFor(handle, (v) => v.status === 'COMPLETED_WITH_FAILURES', 'the arrears expired');
      expect(failed.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'expired' });
      const stored = await em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'debit' });
      expect(stored.lateAt).toEqual(lateAt);
      const waited = stored.failedAt!.getTime() - lateAt!.getTime();
      expect(waited).toBeGreaterThanOrEqual(30 * DAY_MS);
      expect(waited).toBeLessThan(30 * DAY_MS + 60_000);
      expect(await sandbox.ledger({ tenantId, orderRef: 'mandate-never-confirmed' })).toEqual([]);
      expect(await patchesOf(handle.workflowId)).toContain(MANDATE_CHECK_KEEPS_ARREARS_START);
      // The mandate confirmed at last and the instruction retried: the bank is asked, once.
      await em.fork().nativeUpdate(PaymentInstrument, { id: account.id }, { mandateStatus: 'ACTIVE' });
      await handle.executeUpdate(retryInstructionUpdate, { args: [{ instructionRef: 'debit' }] });
      const called = await waitFor(handle, (v) => v.instructions[0].providerRef !== undefined, 'the bank called');
      await handle.signal(providerResultSignal, {
        status: 'SETTLED',
        providerRef: called.instructions[0].providerRef!,
      });
      expect((await handle.result()).status).toBe('COMPLETED');
      const debits = await sandbox.ledger({ tenantId, orderRef: 'mandate-never-confirmed' });
      expect(debits.map((p) => p.kind)).toEqual(['PAYMENT']);
      await record('mandate-checks-expired', handle.workflowId);
    });
  });

  it('refunds a settled payment in parts through its app, each under a key of its own, and refuses more than is left', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'refunds-wf', [{ instructionRef: 'premium-1', amount: '30.00' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      const refund = (refundId: string, amountMinor: string) =>
        handle.executeUpdate(createRefundUpdate, { args: [{ instructionRef: 'premium-1', refundId, amountMinor }] });
      // Not yet collected: the refusal the API's own check gives, whichever of the two sees it first.
      await expectRefused(
        refund(randomUUID(), '1000'),
        /PENDING; only a SETTLED collection can be refunded/,
        'instruction_not_refundable',
      );
      await env.sleep(2 * DAY_MS);
      await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
      await refund(randomUUID(), '1000');
      await refund(randomUUID(), '1500');
      await expectRefused(refund(randomUUID(), '501'), /at most 500 minor units/);
      const view = await waitFor(
        handle,
        (v) => (v.refunds ?? []).filter((r) => r.status === 'SUCCEEDED').length === 2,
        'both refunds made',
      );
      expect(view.status).toBe('COMPLETED');
      const ledger = await sandbox.ledger({ tenantId, orderRef: 'refunds-wf' });
      expect(
        ledger
          .filter((i) => i.kind === 'REFUND')
          .map((i) => [i.idempotencyKey.split(':').slice(-2).join(':'), i.amountMinor]),
      ).toEqual([
        ['refund:1', '1000'],
        ['refund:2', '1500'],
      ]);
      await handle.result();
      const stored = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
      expect(stored).toMatchObject({ settledAmountMinor: 3000n, refundedAmountMinor: 2500n });
      await record('refunds', handle.workflowId);
    });
  });

  it(`takes at most ${MAX_REFUNDS_PER_ORDER} refunds in an order, failed ones too: every later run carries each`, async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'refund-cap', [
      { instructionRef: 'premium-1', amount: '30.00' },
      { instructionRef: 'premium-2', amount: '30.00' },
    ]);
    const now = await env.currentTimeMs();
    const at = (ms: number) => new Date(now + ms).toISOString();
    // What a run hands on: both premiums collected, the first refunded a cent at a time, one refund short of the most.
    const state = OrderEntity.initialState(input);
    for (const machine of state.instructions) {
      Object.assign(machine, {
        status: 'SETTLED',
        toldStatus: 'SETTLED',
        attempts: 1,
        keyUsed: true,
        providerRef: `paid_${machine.plan.instructionRef}`,
        settledAmountMinor: '3000',
        settledAt: at(-DAY_MS),
      });
    }
    const [first] = state.instructions;
    first.refunds = Array.from({ length: MAX_REFUNDS_PER_ORDER - 1 }, (_, i) => {
      const status = i % 2 === 0 ? ('SUCCEEDED' as const) : ('FAILED' as const);
      return {
        refundId: randomUUID(),
        instructionRef: 'premium-1',
        number: i + 1,
        amountMinor: '1',
        currency: 'EUR',
        paymentRef: first.providerRef!,
        appId: 'SANDBOX_CARD',
        status,
        toldStatus: status,
        providerRef: `refund_${i}`,
        createdAt: at(-DAY_MS),
        attempts: 1,
        unanswered: false,
        revision: 0,
      };
    });
    first.refundedAmountMinor = String(first.refunds.filter((r) => r.status === 'SUCCEEDED').length);
    Object.assign(state, { orderEvents: ['order.created'], dirty: [], orderDirty: false });
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start({ ...input, instructions: [] }, { continued: state });
      const refund = (instructionRef: string) =>
        handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef, refundId: randomUUID(), amountMinor: '100' }],
        });
      // The last the order takes, of the other instruction; then none, of either.
      await refund('premium-2');
      await expectRefused(refund('premium-2'), new RegExp(`${MAX_REFUNDS_PER_ORDER} refunds, the most`));
      await expectRefused(refund('premium-1'), /the most/);
      expect((await handle.query(orderStateQuery)).refunds).toHaveLength(MAX_REFUNDS_PER_ORDER);
      // To its end while its worker runs: a run left waiting would hold up the server's clock for the tests after it.
      await handle.result();
    });
  });

  it('collects nothing again when a payment refunded in full is then returned, nor retries it: nothing is owed', async () => {
    const { tenantId } = await createTenantRows(orm, masterKeys);
    const input = await storeOrder(tenantId, 'refunded-returned', [{ instructionRef: 'premium-1', amount: '30.00' }]);
    const worker = await createWorker();
    await worker.runUntil(async () => {
      const handle = await start(input);
      await env.sleep(2 * DAY_MS);
      const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'the premium collected');
      await handle.executeUpdate(createRefundUpdate, {
        args: [{ instructionRef: 'premium-1', refundId: randomUUID(), amountMinor: '3000' }],
      });
      await waitFor(handle, (v) => v.refunds?.[0]?.status === 'SUCCEEDED', 'the refund made');
      // The customer's bank takes the payment back too, for a code that is otherwise collected again.
      await handle.signal(providerResultSignal, {
        status: 'RETURNED',
        providerRef: settled.instructions[0].providerRef!,
        kind: 'RETURN',
        code: 'insufficient_funds',
        appId: 'SANDBOX_CARD',
      });
      const returned = await waitFor(
        handle,
        (v) => v.instructions[0].failureCode?.startsWith('returned:') === true,
        'the return taken',
      );
      expect(returned.instructions[0]).toMatchObject({ status: 'FAILED', failureCode: 'returned:insufficient_funds' });
      // A retry would charge the instruction's whole amount again.
      await expectRefused(
        handle.executeUpdate(retryInstructionUpdate, { args: [{ instructionRef: 'premium-1' }] }),
        /refunded first.* new order/,
      );
      // Past every dunning delay: still one payment, and the order owes nothing.
      await env.sleep(40 * DAY_MS);
      const payments = (await sandbox.ledger({ tenantId, orderRef: 'refunded-returned' })).filter(
        (p) => p.kind === 'PAYMENT',
      );
      expect(payments).toHaveLength(1);
      const stored = await eventually(
        () => orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' }),
        (row) => row.status === 'FAILED',
        { what: 'the read model shows the return' },
      );
      expect(stored).toMatchObject({ settledAmountMinor: 3000n, refundedAmountMinor: 3000n, returnedAmountMinor: 0n });
    });
  });

  it('keeps a refund with the app that took its payment: asked about and called back through it after the customer paid again by another app', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, ['SANDBOX_CARD'], provider);
      const input = await storeOrder(
        tenantId,
        'refund-own-app',
        [{ instructionRef: 'premium-1' }],
        // Its scheme offers the tenant's own provider first, and the sandbox's cards.
        twoOptions(resolvedTo('HTTP_CONNECTOR', 'CARD'), resolvedTo('SANDBOX_CARD', 'CARD')),
      );
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start(input);
        await env.sleep(2 * DAY_MS);
        const settled = await waitFor(handle, (v) => v.status === 'COMPLETED', 'collected by its own provider');
        const paymentRef = settled.instructions[0].providerRef!;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId: randomUUID(), amountMinor: '1000' }],
        });
        const pending = await waitFor(handle, (v) => v.refunds?.[0]?.providerRef !== undefined, 'the refund PENDING');
        const refundRef = pending.refunds![0].providerRef!;
        expect(pending.refunds![0]).toMatchObject({ status: 'PENDING', appId: 'HTTP_CONNECTOR' });
        // While its refund is under way the payment is taken back, and the customer pays by card instead.
        await handle.signal(providerResultSignal, {
          status: 'RETURNED',
          providerRef: paymentRef,
          kind: 'RETURN',
          code: 'insufficient_funds',
          appId: 'HTTP_CONNECTOR',
        });
        await waitFor(
          handle,
          (v) => v.status === 'ACTIVE' && v.instructions[0].status === 'LATE',
          'the payment returned',
        );
        await handle.executeUpdate(payInstructionUpdate, {
          args: [
            {
              instructionRef: 'premium-1',
              appId: 'SANDBOX_CARD',
              paymentMethod: 'CARD',
              financialInstrumentId: 'card_ok',
            },
          ],
        });
        await waitFor(
          handle,
          (v) => v.instructions[0].status === 'SETTLED' && v.instructions[0].appId === 'SANDBOX_CARD',
          'paid again by card',
        );
        const asked = () => provider.requests.filter((r) => r.method === 'GET' && r.path === `/refunds/${refundRef}`);
        const askedBefore = asked().length;
        // The refund is still asked about at its own provider, and taken when that provider calls back.
        await env.sleep(2 * DAY_MS);
        await eventually(
          () => asked().length,
          (n) => n > askedBefore,
          { what: 'the refund asked about at its own provider', timeoutMs: 30_000 },
        );
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        await waitFor(handle, (v) => v.refunds?.[0]?.status === 'SUCCEEDED', 'the refund’s callback taken');
        const view = await handle.result();
        expect(view.status).toBe('COMPLETED');
        const stored = await orm.em.fork().findOneOrFail(PaymentRefund, { tenantId, providerRef: refundRef });
        expect(stored).toMatchObject({ status: 'SUCCEEDED', appId: 'HTTP_CONNECTOR', paymentRef });
        expect(provider.refunds).toHaveLength(1);
        await record('refund-keeps-its-app', handle.workflowId);
      });
    } finally {
      await provider.close();
    }
  });

  it('keeps a refund asked for before refunds kept their app with the app it went through, when the instruction is paid through another', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      const { tenantId } = await createTenantRows(orm, masterKeys, ['SANDBOX_CARD'], provider);
      const input = await storeOrder(
        tenantId,
        'refund-unkept-app',
        [{ instructionRef: 'premium-1' }],
        twoOptions(resolvedTo('HTTP_CONNECTOR', 'CARD'), resolvedTo('SANDBOX_CARD', 'CARD')),
      );
      const now = await env.currentTimeMs();
      const at = (ms: number) => new Date(now + ms).toISOString();
      // What a run of the code before hands on: its payment taken back while a refund of it, with no
      // app of its own, waits for its provider; the instruction LATE, to be collected again.
      const state = OrderEntity.initialState(input);
      const [machine] = state.instructions;
      Object.assign(machine, {
        status: 'LATE',
        toldStatus: 'LATE',
        attempts: 1,
        keyAttempt: 2,
        providerRef: 'own_paid',
        settledAmountMinor: '3000',
        returnedAmountMinor: '3000',
        returnCode: 'insufficient_funds',
        failureCode: 'returned:insufficient_funds',
        retryAt: at(30 * DAY_MS),
        refunds: [
          {
            refundId: randomUUID(),
            instructionRef: 'premium-1',
            number: 1,
            amountMinor: '1000',
            currency: 'EUR',
            paymentRef: 'own_paid',
            status: 'PENDING',
            providerRef: 'ownr_before',
            createdAt: at(-DAY_MS),
            attempts: 1,
            unanswered: false,
            revision: 0,
            toldStatus: 'PENDING',
            pending: { providerRef: 'ownr_before', polls: 0, nextPollAt: at(DAY_MS) },
          },
        ],
      });
      Object.assign(state, { orderEvents: ['order.created'], dirty: [], orderDirty: false });
      const worker = await createWorker();
      await worker.runUntil(async () => {
        const handle = await start({ ...input, instructions: [] }, { continued: state });
        await handle.executeUpdate(payInstructionUpdate, {
          args: [
            {
              instructionRef: 'premium-1',
              appId: 'SANDBOX_CARD',
              paymentMethod: 'CARD',
              financialInstrumentId: 'card_ok',
            },
          ],
        });
        const paid = await waitFor(handle, (v) => v.instructions[0].status === 'SETTLED', 'paid by card');
        expect(paid.refunds![0]).toMatchObject({ status: 'PENDING', appId: 'HTTP_CONNECTOR' });
        await env.sleep(2 * DAY_MS);
        await eventually(
          () => provider.requests.filter((r) => r.method === 'GET' && r.path === '/refunds/ownr_before').length,
          (n) => n > 0,
          { what: 'the refund asked about at the provider it went through', timeoutMs: 30_000 },
        );
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: 'ownr_before',
          appId: 'HTTP_CONNECTOR',
        });
        const view = await handle.result();
        expect(view.refunds![0]).toMatchObject({ status: 'SUCCEEDED', appId: 'HTTP_CONNECTOR' });
      });
    } finally {
      await provider.close();
    }
  });

  it.each(['answered at once', 'answered PENDING, then asked'] as const)(
    'believes no refund of other money than asked (%s): outcome unknown, the key kept, until the provider says it right',
    async (how) => {
      const pending = how === 'answered PENDING, then asked';
      const provider = await startHostileProvider({});
      try {
        const orderRef = pending ? 'refund-other-money-pending' : 'refund-other-money';
        const tenantId = await collectedByOwnProvider(provider, orderRef, 'r', async (handle) => {
          const refundId = randomUUID();
          const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
          // 100.00 EUR refunded of the 10.00 EUR asked.
          const otherMoney = { amountMinor: '10000', currency: 'EUR' };
          if (pending) provider.behaviour.refundOutcome = 'PENDING';
          else provider.behaviour.answerOverrides = otherMoney;
          await handle.executeUpdate(createRefundUpdate, {
            args: [{ instructionRef: 'r', refundId, amountMinor: '1000' }],
          });
          if (pending) {
            await eventually(stored, (r) => r?.providerRef != null, { what: 'the refund PENDING', timeoutMs: 60_000 });
            provider.behaviour.refundOutcome = 'SUCCEEDED';
            provider.behaviour.answerOverrides = otherMoney;
            // Time skips only while the test sleeps: past the first status poll.
            await env.sleep(10 * 60_000);
          }
          const unknown = await eventually(stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
            what: 'the refund’s outcome unknown after a refund of other money',
            timeoutMs: 60_000,
          });
          expect(unknown?.status).toBe('PENDING');
          provider.behaviour.answerOverrides = undefined;
          // Called again under its key an hour later, answered with the money asked.
          await env.sleep(70 * 60_000);
          await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 60_000 });
        });
        const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
        expect(calls.length).toBeGreaterThan(1);
        expect(new Set(calls.map((r) => r.idempotencyKey))).toEqual(new Set([provider.refunds[0].idempotencyKey]));
        expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
        const instruction = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'r' });
        expect(instruction.refundedAmountMinor).toBe(1000n);
      } finally {
        await provider.close();
      }
    },
  );

  it('collects nothing again when the provider made a refund, still PENDING here, before the bank took back the rest', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      const tenantId = await collectedByOwnProvider(provider, 'refund-then-return', 'r', async (handle) => {
        const paymentRef = (await handle.query(orderStateQuery)).instructions[0].providerRef!;
        const { stored, refundRef } = await refundPendingAtProvider(handle, 'r');
        // The provider refunded 10.00, then the bank took back the other 20.00 (a retryable code, which
        // alone would be collected again): the return's callback comes before the refund's.
        await handle.signal(providerResultSignal, {
          status: 'RETURNED',
          providerRef: paymentRef,
          kind: 'RETURN',
          code: 'insufficient_funds',
          amountMinor: '2000',
          appId: 'HTTP_CONNECTOR',
        });
        const returned = await waitFor(handle, (v) => v.instructions[0].failureCode !== undefined, 'the return taken');
        expect(returned.instructions[0]).toMatchObject({
          status: 'FAILED',
          failureCode: 'returned:insufficient_funds',
        });
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
        // Past every dunning delay.
        await env.sleep(40 * DAY_MS);
      });
      expect(provider.charges).toHaveLength(1);
      const instruction = await orm.em.fork().findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'r' });
      expect(instruction).toMatchObject({
        status: 'FAILED',
        settledAmountMinor: 3000n,
        refundedAmountMinor: 1000n,
        returnedAmountMinor: 2000n,
      });
    } finally {
      await provider.close();
    }
  });

  it('calls a refund of unknown outcome (PENDING, then asked: other money) again at once when its callback comes', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-unknown-called-back', 'r', async (handle) => {
        const { stored, refundRef } = await refundUnknownAtProvider(provider, handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        // Time skips only while the test sleeps, so not by the hourly retry: called again at once.
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
        await record('refund-unknown-called-back', handle.workflowId);
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
      const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
      expect(calls.map((r) => r.idempotencyKey)).toEqual([1, 2].map(() => provider.refunds[0].idempotencyKey));
    } finally {
      await provider.close();
    }
  });

  it('takes a refund’s callback that came while its call was under way, once the call is answered PENDING', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-called-back-early', 'r', async (handle) => {
        const refundId = randomUUID();
        const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
        let release!: () => void;
        provider.behaviour.holdRefundAnswers = new Promise<void>((resolve) => (release = resolve));
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'r', refundId, amountMinor: '1000' }],
        });
        const [made] = await eventually(
          () => provider.refunds,
          (refunds) => refunds.length === 1,
          { what: 'the refund made, its answer held', timeoutMs: 30_000 },
        );
        // As a worker meets them after the one that called was killed: the callback first, then the answer.
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: made.providerRef,
          appId: 'HTTP_CONNECTOR',
        });
        release();
        // Time skips only while the test sleeps, so not to the status poll 5 min on: made by the callback kept.
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
        await record('refund-called-back-early', handle.workflowId);
      });
      expect(provider.refunds).toHaveLength(1);
      expect(provider.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/refunds/'))).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  it('takes a refund’s callback that came while it was called again after its outcome was unknown', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-unknown-called-back-early', 'r', async (handle) => {
        const { stored, refundRef } = await refundUnknownAtProvider(provider, handle, 'r');
        let release!: () => void;
        provider.behaviour.holdRefundAnswers = new Promise<void>((resolve) => (release = resolve));
        // To its hourly call under the same key, whose answer the provider holds.
        await env.sleep(60 * 60_000 + 1_000);
        const calls = () => provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
        await eventually(calls, (c) => c.length === 2, { what: 'the refund called again', timeoutMs: 30_000 });
        await handle.signal(refundResultSignal, {
          status: 'SUCCEEDED',
          providerRef: refundRef,
          appId: 'HTTP_CONNECTOR',
        });
        release();
        // Time skips only while the test sleeps, so not to the status poll 5 min on: made by the callback kept.
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
      });
      expect(provider.refunds).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('makes a refund by a callback that came while the provider was asked, though its answer then stated other money', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-callback-while-asked', 'r', async (handle) => {
        const { refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, { status: 'SUCCEEDED', providerRef: refundRef, appId: 'HTTP_CONNECTOR' }),
        );
        const ended = await waitFor(handle, (v) => v.refunds?.[0]?.status !== 'PENDING', 'the refund ended');
        expect(ended.refunds?.[0]?.status).toBe('SUCCEEDED');
        provider.behaviour.answerOverrides = undefined;
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
    } finally {
      await provider.close();
    }
  });

  it('keeps the key of a refund failed by a callback that came while the provider was asked, its answer then stating other money', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-failed-while-asked', 'r', async (handle) => {
        const { stored, refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'SUCCEEDED';
        provider.behaviour.answerOverrides = { amountMinor: '10000', currency: 'EUR' };
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, {
            status: 'FAILED',
            providerRef: refundRef,
            code: 'refund_failed',
            appId: 'HTTP_CONNECTOR',
          }),
        );
        // Money moved, by the answer: not failed (its amount refundable again under a new key), but unknown.
        await eventually(stored, (r) => r?.failureCode === 'outcome_unknown:amount_mismatch', {
          what: 'the refund’s outcome unknown',
          timeoutMs: 30_000,
        });
        expect((await stored())?.status).toBe('PENDING');
        provider.behaviour.answerOverrides = undefined;
        // Called again under its key an hour later, and made by the provider's answer to that.
        await env.sleep(61 * 60_000);
        await eventually(stored, (r) => r?.status === 'SUCCEEDED', { what: 'the refund made', timeoutMs: 30_000 });
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
      const calls = provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds');
      expect(new Set(calls.map((r) => r.idempotencyKey))).toEqual(new Set([provider.refunds[0].idempotencyKey]));
    } finally {
      await provider.close();
    }
  });

  it('makes a refund by a callback that came while the provider was asked, though its answer then said failed', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-made-while-asked', 'r', async (handle) => {
        const { refundRef } = await refundPendingAtProvider(handle, 'r');
        provider.behaviour.refundOutcome = 'FAILED';
        await calledBackWhileAsked(provider, `/refunds/${refundRef}`, () =>
          handle.signal(refundResultSignal, { status: 'SUCCEEDED', providerRef: refundRef, appId: 'HTTP_CONNECTOR' }),
        );
        const ended = await waitFor(handle, (v) => v.refunds?.[0]?.status !== 'PENDING', 'the refund ended');
        expect(ended.refunds?.[0]?.status).toBe('SUCCEEDED');
      });
      expect(provider.refunds.map((r) => r.amountMinor)).toEqual(['1000']);
    } finally {
      await provider.close();
    }
  });

  it('lets a tenant admin resolve a PENDING refund once its provider refuses to say how it ended, and not before', async () => {
    const provider = await startHostileProvider({ refundOutcome: 'PENDING' });
    try {
      await collectedByOwnProvider(provider, 'refund-refused-then-resolved', 'r', async (handle) => {
        const { stored } = await refundPendingAtProvider(handle, 'r');
        const refundId = (await stored())!.refundId;
        const resolve = () =>
          handle.executeUpdate(resolveRefundUpdate, { args: [{ instructionRef: 'r', refundId, outcome: 'FAILED' }] });
        await expectRefused(resolve(), /is PENDING at its provider, which will say how it ends/);
        await statusPollRefused(provider, handle);
        const shown = await eventually(stored, (r) => r?.failureCode != null, {
          what: 'the refusal shown',
          timeoutMs: 30_000,
        });
        expect(shown).toMatchObject({ status: 'PENDING', failureCode: 'status_refused:provider_rejected:http_404' });
        await takenOnce(resolve, /PENDING at its provider|right now/);
        await eventually(stored, (r) => r?.status === 'FAILED', { what: 'the refund resolved', timeoutMs: 30_000 });
        expect((await stored())?.failureCode).toBe('resolved_not_refunded');
      });
      expect(provider.refunds).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('resolves a refund of unknown outcome only between its calls: FAILED frees its amount for a refund under a new key', async () => {
    const provider = await startHostileProvider({});
    try {
      await collectedByOwnProvider(provider, 'refund-resolved', 'premium-1', async (handle, tenantId) => {
        const refundId = randomUUID();
        const refundCalls = () => provider.requests.filter((r) => r.method === 'POST' && r.path === '/refunds').length;
        // The provider takes the refund's calls and answers none: its outcome is unknown.
        provider.behaviour.holdRefunds = true;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId, amountMinor: '1000' }],
        });
        // Time skips only while the test sleeps: the refund's calls and its hourly retry come when it does.
        const stored = () => orm.em.fork().findOne(PaymentRefund, { refundId });
        await env.sleep(10 * 60_000);
        await eventually(stored, (r) => r?.failureCode === 'provider_unavailable', {
          what: 'the refund unanswered',
          timeoutMs: 60_000,
        });
        const firstCall = refundCalls();
        const resolve = (outcome: 'SUCCEEDED' | 'FAILED') =>
          handle.executeUpdate(resolveRefundUpdate, { args: [{ instructionRef: 'premium-1', refundId, outcome }] });
        const anHourLater = env.sleep(60 * 60_000);
        await eventually(refundCalls, (n) => n > firstCall, { what: 'the refund called again', timeoutMs: 60_000 });
        // While that call is out, only its answer may end the refund.
        await expectRefused(resolve('FAILED'), /being asked about refund 1 of premium-1 right now/);
        await anHourLater;
        await env.sleep(10 * 60_000);
        // Between calls a tenant admin says nothing was refunded: its amount may be refunded again.
        await resolve('FAILED');
        await expectRefused(resolve('SUCCEEDED'), /is FAILED; only a refund of unknown outcome is resolved/);
        provider.behaviour.holdRefunds = false;
        await handle.executeUpdate(createRefundUpdate, {
          args: [{ instructionRef: 'premium-1', refundId: randomUUID(), amountMinor: '3000' }],
        });
        await handle.result();
        expect(await stored()).toMatchObject({ status: 'FAILED', failureCode: 'resolved_not_refunded' });
        expect(provider.refunds.map((r) => [r.idempotencyKey.split(':').slice(-2).join(':'), r.amountMinor])).toEqual([
          ['refund:2', '3000'],
        ]);
        const instruction = await orm.em
          .fork()
          .findOneOrFail(PaymentInstruction, { tenantId, instructionRef: 'premium-1' });
        expect(instruction.refundedAmountMinor).toBe(3000n);
      });
    } finally {
      await provider.close();
    }
  });
});
