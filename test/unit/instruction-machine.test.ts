import { describe, expect, it } from 'vitest';
import type { InstructionPlan } from '../../domain/instruction.js';
import {
  amendRefusal,
  applyAmendment,
  applyCancel,
  applyPayment,
  applyResolution,
  applyExpiry,
  applyMandateChange,
  applyNotice,
  applyResult,
  applyRetry,
  applyReturn,
  changeRefusal,
  decide,
  MANDATE_NOT_ACTIVE,
  MANDATE_RECHECK_DELAYS_MS,
  newMachine,
  nextActionAt,
  payRefusal,
  resolutionRefusal,
  retryRefusal,
  refundableOf,
  reverses,
  startCall,
  stillPending,
  STATUS_POLL_DELAYS_MS,
  transition,
  UNANSWERED_RETRY_MS,
} from '../../orders/workflow/instruction-machine.js';
import { applyRefundResult, decideRefund, type RefundMachine } from '../../orders/workflow/refund-machine.js';

const DAY = 24 * 3600_000;
const t0 = Date.parse('2030-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const DUNNING = { dunningDelaysMs: [DAY, 3 * DAY], returnsPolicy: 'RECOLLECT' } as const;

function plan(overrides: Partial<InstructionPlan> = {}): InstructionPlan {
  const card = { appId: 'SANDBOX_CARD', paymentMethod: 'CARD' as const, priority: 1, voucherGroupIds: [] };
  const bank = { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' as const, priority: 2, voucherGroupIds: [] };
  return {
    instructionId: 'id-1',
    position: 0,
    instructionRef: 'premium-1',
    direction: 'DEBIT',
    amountMinor: '1000',
    currency: 'EUR',
    country: 'FR',
    openAt: iso(t0 + DAY),
    dueAt: iso(t0 + 2 * DAY),
    financialInstrumentId: 'card_ok',
    schemeId: 'scheme-1',
    schemeVersion: 1,
    options: [card, bank],
    appId: 'SANDBOX_CARD',
    paymentMethod: 'CARD',
    ...overrides,
  };
}

describe('the instruction state machine', () => {
  it('waits to open, opens, waits to fall due, then calls the provider', () => {
    const m = newMachine(plan());
    expect(decide(m, t0)).toEqual({ kind: 'wait', until: iso(t0 + DAY), why: 'opens' });
    expect(decide(m, t0 + DAY)).toEqual({ kind: 'open' });
    transition(m, 'OPEN', iso(t0 + DAY));
    expect(decide(m, t0 + DAY)).toEqual({ kind: 'wait', until: iso(t0 + 2 * DAY), why: 'falls due' });
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'call' });
  });

  it('goes LATE at its due date without an instrument, and waits for one', () => {
    const m = newMachine(plan({ financialInstrumentId: undefined }));
    transition(m, 'OPEN', iso(t0));
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'late', code: 'no_financial_instrument' });
    transition(m, 'LATE', iso(t0 + 2 * DAY));
    expect(decide(m, t0 + 10 * DAY).kind).toBe('wait');
    expect(nextActionAt(m)).toBeUndefined();
    applyAmendment(m, { financialInstrumentId: 'card_ok' }, t0 + 3 * DAY);
    expect(m.retryAt).toBe(iso(t0 + 3 * DAY));
    expect(decide(m, t0 + 3 * DAY)).toEqual({ kind: 'call' });
  });

  it('waits for its charge date (a business day), not its due date, and for a new one once the due date is amended', () => {
    const m = newMachine(plan({ chargeAt: iso(t0 + 4 * DAY) }));
    transition(m, 'OPEN', iso(t0 + DAY));
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'wait', until: iso(t0 + 4 * DAY), why: 'falls due' });
    // A new due date sent without its business day (as before business days): charged as asked.
    applyAmendment(m, { dueAt: iso(t0 + 3 * DAY) }, t0 + 2 * DAY);
    expect(m.plan.chargeAt).toBeUndefined();
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'wait', until: iso(t0 + 3 * DAY), why: 'falls due' });
  });

  it('waits LATE for another instrument when the mandate of its stored one ends; goes again when a pending one is confirmed', () => {
    const debit = { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' as const, financialInstrumentId: undefined };
    const open = newMachine(plan({ ...debit, instrumentId: 'ins-1' }));
    transition(open, 'OPEN', iso(t0 + DAY));
    const pending = newMachine(plan({ ...debit, instrumentId: 'ins-1' }));
    const other = newMachine(plan({ ...debit, instrumentId: 'ins-2' }));
    for (const m of [open, pending, other])
      applyMandateChange(m, { instrumentId: 'ins-1', status: 'CANCELLED' }, iso(t0 + DAY));
    expect(open).toMatchObject({ status: 'LATE', failureCode: 'mandate_cancelled' });
    expect(open.plan.instrumentId).toBeUndefined();
    expect(decide(open, t0 + 5 * DAY).kind).toBe('wait');
    // Not yet open: it keeps its status, and at its charge date goes LATE for the mandate, not "no instrument".
    expect(pending.status).toBe('PENDING');
    transition(pending, 'OPEN', iso(t0 + DAY));
    expect(decide(pending, t0 + 2 * DAY)).toEqual({ kind: 'late', code: 'mandate_cancelled' });
    expect(other).toMatchObject({ status: 'PENDING', plan: { instrumentId: 'ins-2' } });

    const waiting = newMachine(plan({ ...debit, instrumentId: 'ins-3' }));
    transition(waiting, 'OPEN', iso(t0 + DAY));
    transition(waiting, 'LATE', iso(t0 + 2 * DAY));
    waiting.failureCode = MANDATE_NOT_ACTIVE;
    expect(applyMandateChange(waiting, { instrumentId: 'ins-3', status: 'ACTIVE' }, iso(t0 + 3 * DAY))).toBe(true);
    expect(decide(waiting, t0 + 3 * DAY)).toEqual({ kind: 'call' });
  });

  it('tries a debit refused for want of an active mandate again on a schedule, then waits for the confirmation only', () => {
    const debit = { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' as const, financialInstrumentId: undefined };
    const m = newMachine(plan({ ...debit, instrumentId: 'ins-1' }));
    transition(m, 'OPEN', iso(t0 + DAY));
    const refused = { status: 'REJECTED', code: MANDATE_NOT_ACTIVE } as const;
    const firstRefusal = t0 + 2 * DAY;
    let now = firstRefusal;
    for (const delay of MANDATE_RECHECK_DELAYS_MS) {
      expect(decide(m, now, 30 * DAY)).toEqual({ kind: 'call' });
      startCall(m, iso(now));
      applyResult(m, refused, now, DUNNING, { recheckMandate: true, keepsArrearsStart: true });
      // Its arrears began at the first refusal: a check that finds the mandate still not active sent nothing.
      expect(m).toMatchObject({ status: 'LATE', failureCode: MANDATE_NOT_ACTIVE, lateAt: iso(firstRefusal) });
      expect(decide(m, now + delay - 1, 30 * DAY)).toEqual({
        kind: 'wait',
        until: iso(now + delay),
        why: 'is retried',
      });
      now += delay;
    }
    startCall(m, iso(now));
    applyResult(m, refused, now, DUNNING, { recheckMandate: true, keepsArrearsStart: true });
    // The schedule spent: it waits for the mandate's confirmation (or an amendment) until its arrears
    // expire, 30 days after the first refusal, not after the last check.
    expect(now - firstRefusal).toBeGreaterThan(DAY);
    expect(decide(m, now + DAY, 30 * DAY)).toMatchObject({ kind: 'wait', until: iso(firstRefusal + 30 * DAY) });
    expect(applyMandateChange(m, { instrumentId: 'ins-1', status: 'ACTIVE' }, iso(now + DAY))).toBe(true);
    expect(decide(m, now + DAY, 30 * DAY)).toEqual({ kind: 'call' });
    // An amendment to another instrument starts its checks afresh, as any other answer does.
    m.mandateChecks = MANDATE_RECHECK_DELAYS_MS.length;
    applyAmendment(m, { instrumentId: 'ins-2' }, now);
    expect(m.mandateChecks).toBeUndefined();
    m.mandateChecks = MANDATE_RECHECK_DELAYS_MS.length;
    // Any other answer starts the schedule again for a later refusal; without the patch there is none.
    startCall(m, iso(now + DAY));
    applyResult(m, { status: 'UNANSWERED' }, now + DAY, DUNNING, { recheckMandate: true });
    expect(m.mandateChecks).toBeUndefined();
    const unpatched = newMachine(plan({ ...debit, instrumentId: 'ins-1' }));
    transition(unpatched, 'OPEN', iso(t0 + DAY));
    startCall(unpatched, iso(t0 + 2 * DAY));
    applyResult(unpatched, refused, t0 + 2 * DAY, DUNNING);
    expect(unpatched.retryAt).toBeUndefined();
  });

  it('counts a debit’s arrears from its last refusal for want of the mandate in runs from before the arrears kept their start', () => {
    const debit = { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' as const, financialInstrumentId: undefined };
    const m = newMachine(plan({ ...debit, instrumentId: 'ins-1' }));
    transition(m, 'OPEN', iso(t0 + DAY));
    const refused = { status: 'REJECTED', code: MANDATE_NOT_ACTIVE } as const;
    startCall(m, iso(t0 + 2 * DAY));
    applyResult(m, refused, t0 + 2 * DAY, DUNNING, { recheckMandate: true });
    const check = t0 + 2 * DAY + MANDATE_RECHECK_DELAYS_MS[0];
    startCall(m, iso(check));
    applyResult(m, refused, check, DUNNING, { recheckMandate: true });
    expect(m.lateAt).toBe(iso(check));
    // Another refusal after a check is not the mandate's: its arrears begin there.
    startCall(m, iso(check + DAY));
    applyResult(m, { status: 'REJECTED', code: 'provider_rejected:instrument_removed' }, check + DAY, DUNNING, {
      recheckMandate: false,
      keepsArrearsStart: true,
    });
    expect(m.lateAt).toBe(iso(check + DAY));
  });

  it('tells the customer its notice period before a bank debit’s charge date, and again after a change of amount or date', () => {
    const bank = { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' as const, priority: 1, voucherGroupIds: [] };
    const m = newMachine(
      plan({
        appId: 'SANDBOX_BANK',
        paymentMethod: 'BANK_DEBIT',
        options: [{ ...bank, preNotificationDays: 14 }],
        chargeAt: iso(t0 + 20 * DAY),
      }),
    );
    expect(decide(m, t0)).toEqual({ kind: 'wait', until: iso(t0 + DAY), why: 'opens' });
    transition(m, 'OPEN', iso(t0 + DAY));
    expect(decide(m, t0 + DAY)).toEqual({ kind: 'wait', until: iso(t0 + 6 * DAY), why: 'is told to its customer' });
    expect(nextActionAt(m)).toBe(iso(t0 + 6 * DAY));
    expect(decide(m, t0 + 6 * DAY)).toEqual({ kind: 'notify' });
    applyNotice(m);
    expect(decide(m, t0 + 6 * DAY)).toEqual({ kind: 'wait', until: iso(t0 + 20 * DAY), why: 'falls due' });
    // A new amount inside the window: told again at once (the API moves the charge date to keep the notice).
    applyAmendment(m, { amountMinor: '2000', chargeAt: iso(t0 + 24 * DAY), dueAt: iso(t0 + 24 * DAY) }, t0 + 10 * DAY);
    expect(decide(m, t0 + 10 * DAY)).toEqual({ kind: 'notify' });
    applyNotice(m);
    expect(decide(m, t0 + 24 * DAY)).toEqual({ kind: 'call' });

    // Told while not yet open, when the notice comes first; the customer paying now needs none.
    const early = newMachine(
      plan({
        appId: 'SANDBOX_BANK',
        paymentMethod: 'BANK_DEBIT',
        options: [{ ...bank, preNotificationDays: 14 }],
        openAt: iso(t0 + 10 * DAY),
        dueAt: iso(t0 + 12 * DAY),
      }),
    );
    expect(decide(early, t0)).toEqual({ kind: 'notify' });
    const paying = newMachine(
      plan({ appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', options: [{ ...bank, preNotificationDays: 14 }] }),
    );
    transition(paying, 'OPEN', iso(t0 + DAY));
    applyPayment(paying, { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', financialInstrumentId: 'bank_ok' });
    expect(decide(paying, t0 + DAY)).toEqual({ kind: 'call' });
    // An option resolved before notices existed asks for none.
    const before = newMachine(plan({ appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', options: [bank] }));
    transition(before, 'OPEN', iso(t0 + DAY));
    expect(decide(before, t0 + DAY)).toEqual({ kind: 'wait', until: iso(t0 + 2 * DAY), why: 'falls due' });
  });

  it('duns a retryable decline with a new key each time, then fails it', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    for (const [attempt, delay] of DUNNING.dunningDelaysMs.entries()) {
      startCall(m, iso(t0));
      applyResult(
        m,
        { status: 'DECLINED', providerRef: `p${attempt}`, code: 'insufficient_funds', retryable: true },
        t0,
        DUNNING,
      );
      expect(m).toMatchObject({
        status: 'LATE',
        retryAt: iso(t0 + delay),
        keyAttempt: attempt + 2,
        failureCode: 'insufficient_funds',
      });
    }
    startCall(m, iso(t0));
    applyResult(m, { status: 'DECLINED', providerRef: 'p2', code: 'insufficient_funds', retryable: true }, t0, DUNNING);
    expect(m).toMatchObject({ status: 'FAILED', attempts: 3 });
    expect(decide(m, t0)).toEqual({ kind: 'done' });
  });

  it('fails a decline that cannot pass at once', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    applyResult(m, { status: 'DECLINED', providerRef: 'p', code: 'suspected_fraud', retryable: false }, t0, DUNNING);
    expect(m.status).toBe('FAILED');
  });

  it('keeps the key of an unanswered call, asks again in an hour, and refuses changes meanwhile', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    applyResult(m, { status: 'UNANSWERED' }, t0, DUNNING);
    expect(m).toMatchObject({
      status: 'LATE',
      unanswered: true,
      keyAttempt: 1,
      retryAt: iso(t0 + UNANSWERED_RETRY_MS),
      failureCode: 'provider_unavailable',
    });
    expect(changeRefusal(m, 'cancel')).toMatch(/unanswered/);
    expect(amendRefusal(m, { amountMinor: '5' })).toMatch(/unanswered/);
    expect(decide(m, t0 + UNANSWERED_RETRY_MS)).toEqual({ kind: 'call' });
    // Asked again under the key, the provider says it is pending: no longer shown as unknown (nor resolvable).
    startCall(m, iso(t0 + UNANSWERED_RETRY_MS));
    applyResult(m, { status: 'PENDING', providerRef: 'pay_u' }, t0 + UNANSWERED_RETRY_MS, DUNNING);
    expect(m).toMatchObject({ status: 'PROCESSING', unanswered: false, failureCode: undefined });
    expect(resolutionRefusal(m, t0 + UNANSWERED_RETRY_MS)).toMatch(/no payment of unknown outcome/);
  });

  it('keeps the key when a retry under it is refused: the outcome is unknown, not "nothing moved"', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    applyResult(m, { status: 'UNKNOWN', code: 'http_409' }, t0, DUNNING);
    expect(m).toMatchObject({
      status: 'LATE',
      unanswered: true,
      keyAttempt: 1,
      keyUsed: true,
      retryAt: iso(t0 + UNANSWERED_RETRY_MS),
      failureCode: 'outcome_unknown',
    });
    expect(changeRefusal(m, 'cancel')).toMatch(/may have moved money/);
    expect(amendRefusal(m, { financialInstrumentId: 'card_other' })).toMatch(/may have moved money/);
    expect(payRefusal(m, { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' })).toMatch(/may have moved money/);
    // Asked again later, under the same key.
    expect(decide(m, t0 + UNANSWERED_RETRY_MS)).toEqual({ kind: 'call' });
    expect(m.keyAttempt).toBe(1);
  });

  it('ends an unknown outcome only by a resolution: settled, or not paid with the key released', () => {
    const fresh = newMachine(plan());
    expect(resolutionRefusal(fresh, t0)).toMatch(/no payment of unknown outcome/);

    const settled = newMachine(plan());
    transition(settled, 'OPEN', iso(t0));
    startCall(settled, iso(t0));
    expect(resolutionRefusal(settled, t0)).toMatch(/no payment of unknown outcome/);
    applyResult(settled, { status: 'UNKNOWN', code: 'http_405' }, t0, DUNNING);
    expect(resolutionRefusal(settled, t0)).toBeUndefined();
    // Its hour passed (or its provider's callback prompted the call): the call is as good as under way.
    expect(resolutionRefusal(settled, t0 + UNANSWERED_RETRY_MS)).toMatch(/right now/);
    applyResolution(settled, { outcome: 'SETTLED', providerRef: 'pay_1' }, iso(t0 + DAY));
    expect(settled).toMatchObject({
      status: 'SETTLED',
      settledAt: iso(t0 + DAY),
      providerRef: 'pay_1',
      // Collected, as a settlement the provider answered is: the totals and what can be refunded count it.
      settledAmountMinor: '1000',
      failureCode: undefined,
      unanswered: false,
      keyAttempt: 1,
    });
    expect(decide(settled, t0 + 365 * DAY)).toEqual({ kind: 'done' });

    // A history from before the resolution counted the amount replays without it.
    const replayed = newMachine(plan());
    transition(replayed, 'OPEN', iso(t0));
    startCall(replayed, iso(t0));
    applyResult(replayed, { status: 'UNANSWERED' }, t0, DUNNING);
    applyResolution(replayed, { outcome: 'SETTLED', providerRef: 'pay_2' }, iso(t0 + DAY), false);
    expect(replayed).toMatchObject({ status: 'SETTLED', providerRef: 'pay_2', settledAmountMinor: '0' });

    const notPaid = newMachine(plan());
    transition(notPaid, 'OPEN', iso(t0));
    startCall(notPaid, iso(t0));
    applyResult(notPaid, { status: 'UNANSWERED' }, t0, DUNNING);
    applyResolution(notPaid, { outcome: 'NOT_PAID' }, iso(t0 + DAY));
    expect(notPaid).toMatchObject({
      status: 'LATE',
      unanswered: false,
      keyAttempt: 2,
      keyUsed: false,
      retryAt: undefined,
      failureCode: 'resolved_not_paid',
    });
    // It waits for the tenant: an amendment or a payment may now go ahead, under the new key.
    expect(decide(notPaid, t0 + 365 * DAY).kind).toBe('wait');
    expect(amendRefusal(notPaid, { financialInstrumentId: 'card_other' })).toBeUndefined();
    expect(resolutionRefusal(notPaid, t0)).toMatch(/no payment of unknown outcome/);
  });

  it('lets a PENDING payment be resolved once its provider refused to say how it ended, between polls', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    applyResult(m, { status: 'PENDING', providerRef: 'pay_p' }, t0, DUNNING);
    expect(resolutionRefusal(m, t0)).toMatch(/no payment of unknown outcome/);
    stillPending(m, t0 + STATUS_POLL_DELAYS_MS[0], 'provider_rejected:http_404');
    expect(resolutionRefusal(m, t0)).toBeUndefined();
    // Shown as resolvable, not only logged: still PROCESSING, with the refusal as its failure code.
    expect(m).toMatchObject({ status: 'PROCESSING', failureCode: 'status_refused:provider_rejected:http_404' });
    m.pending!.asking = true;
    expect(resolutionRefusal(m, t0)).toMatch(/being asked about .* right now/);
    m.pending!.asking = undefined;
    // Its callback came in the same workflow task, not applied yet: it ends the payment, not a tenant admin.
    m.pending!.result = { status: 'SETTLED', providerRef: 'pay_p' };
    expect(resolutionRefusal(m, t0)).toMatch(/has just said how/);
    m.pending!.result = undefined;
    // Asked again, it says it is still pending: only its provider ends it again.
    stillPending(m, t0 + DAY);
    expect(resolutionRefusal(m, t0)).toMatch(/no payment of unknown outcome/);
    expect(m.failureCode).toBeUndefined();
    stillPending(m, t0 + 2 * DAY, 'app_credentials_unreadable');
    applyResolution(m, { outcome: 'NOT_PAID' }, iso(t0 + 3 * DAY));
    expect(m).toMatchObject({ status: 'LATE', pending: undefined, keyAttempt: 2, failureCode: 'resolved_not_paid' });
    expect(decide(m, t0 + 365 * DAY).kind).toBe('wait');

    // Or found settled: its amount counted, by the reference the provider gave it when PENDING.
    const settled = newMachine(plan());
    transition(settled, 'OPEN', iso(t0));
    startCall(settled, iso(t0));
    applyResult(settled, { status: 'PENDING', providerRef: 'pay_s' }, t0, DUNNING);
    stillPending(settled, t0 + STATUS_POLL_DELAYS_MS[0], 'provider_rejected:http_404');
    applyResolution(settled, { outcome: 'SETTLED' }, iso(t0 + DAY));
    expect(settled).toMatchObject({
      status: 'SETTLED',
      providerRef: 'pay_s',
      settledAmountMinor: '1000',
      pending: undefined,
    });
    expect(decide(settled, t0 + 365 * DAY)).toEqual({ kind: 'done' });
  });

  it('holds a refused payment LATE without a retry time until a change cures it, with a new key', () => {
    const m = newMachine(plan());
    const due = t0 + 2 * DAY;
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(due));
    applyResult(m, { status: 'REJECTED', code: 'app_not_installed' }, due, DUNNING);
    expect(m).toMatchObject({ status: 'LATE', retryAt: undefined, keyAttempt: 2, failureCode: 'app_not_installed' });
    expect(decide(m, due + 365 * DAY).kind).toBe('wait');
    applyAmendment(m, { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT' }, due + DAY);
    expect(decide(m, due + DAY)).toEqual({ kind: 'call' });
  });

  it('waits for a PENDING payment’s callback, asks on a backoff, and settles on the result', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    applyResult(m, { status: 'PENDING', providerRef: 'p1' }, t0, DUNNING);
    expect(decide(m, t0)).toEqual({
      kind: 'wait',
      until: iso(t0 + STATUS_POLL_DELAYS_MS[0]),
      why: 'awaits the provider',
    });
    expect(decide(m, t0 + STATUS_POLL_DELAYS_MS[0])).toEqual({ kind: 'ask', providerRef: 'p1' });
    stillPending(m, t0 + STATUS_POLL_DELAYS_MS[0]);
    expect(m.pending?.nextPollAt).toBe(iso(t0 + STATUS_POLL_DELAYS_MS[0] + STATUS_POLL_DELAYS_MS[1]));
    m.pending!.result = { status: 'SETTLED', providerRef: 'p1' };
    expect(decide(m, t0)).toEqual({ kind: 'settle', result: { status: 'SETTLED', providerRef: 'p1' } });
    applyResult(m, m.pending!.result, t0, DUNNING);
    expect(m).toMatchObject({ status: 'SETTLED', pending: undefined, providerRef: 'p1' });
  });

  it('re-plans on an amendment: earlier fires at the new date, later not at the old one', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0 + DAY));
    applyAmendment(m, { dueAt: iso(t0 + DAY + 3600_000) }, t0 + DAY);
    expect(decide(m, t0 + DAY + 3600_000)).toEqual({ kind: 'call' });
    applyAmendment(m, { dueAt: iso(t0 + 5 * DAY) }, t0 + DAY);
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'wait', until: iso(t0 + 5 * DAY), why: 'falls due' });
    expect(amendRefusal(m, { openAt: iso(t0) })).toMatch(/open already/);
    expect(amendRefusal(m, { dueAt: iso(t0) })).toMatch(/dueDate/);
  });

  it('uses a key for one payment only: a refused call’s key is never reused, and an unused key survives a change', () => {
    const m = newMachine(plan());
    applyAmendment(m, { amountMinor: '2000' }, t0);
    expect(m.keyAttempt).toBe(1); // never used: nothing to confuse
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0));
    expect(m.keyUsed).toBe(true);
    applyResult(m, { status: 'REJECTED', code: 'provider_rejected' }, t0, DUNNING);
    expect(m).toMatchObject({ keyAttempt: 2, keyUsed: false });
    // The next payment is a changed one, under the new key, which nothing has used yet.
    applyAmendment(m, { amountMinor: '3000', financialInstrumentId: 'card_other' }, t0 + DAY);
    expect(m).toMatchObject({ keyAttempt: 2, keyUsed: false });
    startCall(m, iso(t0 + DAY));
    applyResult(
      m,
      { status: 'DECLINED', providerRef: 'p', code: 'insufficient_funds', retryable: true },
      t0 + DAY,
      DUNNING,
    );
    expect(m).toMatchObject({ keyAttempt: 3, keyUsed: false });
  });

  it('calls again under the same key when its call was cut short in PROCESSING, and takes no change meanwhile', () => {
    const m = newMachine(plan());
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0 + 2 * DAY));
    // The call never came back (say the worker died): still PROCESSING, no pending answer.
    expect(m).toMatchObject({ status: 'PROCESSING', keyAttempt: 1, attempts: 1 });
    expect(decide(m, t0 + 2 * DAY)).toEqual({ kind: 'call' });
    expect(nextActionAt(m)).toBeUndefined();
    for (const change of ['cancel', 'amend', 'pay'] as const) expect(changeRefusal(m, change)).toMatch(/being paid/);
    startCall(m, iso(t0 + 2 * DAY));
    expect(m).toMatchObject({ status: 'PROCESSING', keyAttempt: 1, attempts: 2 });
    applyResult(m, { status: 'SETTLED', providerRef: 'p1' }, t0 + 2 * DAY, DUNNING);
    expect(m).toMatchObject({ status: 'SETTLED', providerRef: 'p1', keyAttempt: 1 });
  });

  it('lets the customer pay an OPEN instruction now with one of its options, and not twice', () => {
    const m = newMachine(plan());
    expect(payRefusal(m, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD' })).toMatch(/not open/);
    transition(m, 'OPEN', iso(t0 + DAY));
    expect(payRefusal(m, { appId: 'SANDBOX_VOUCHERS', paymentMethod: 'VOUCHER' })).toMatch(/not an option/);
    applyPayment(m, { appId: 'SANDBOX_BANK', paymentMethod: 'BANK_DEBIT', financialInstrumentId: 'bank_ok' });
    // A second submit in the same moment, before the call has started, is refused too.
    expect(payRefusal(m, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD' })).toMatch(/being paid/);
    expect(decide(m, t0 + DAY)).toEqual({ kind: 'call' });
    startCall(m, iso(t0 + DAY));
    expect(m.plan).toMatchObject({
      appId: 'SANDBOX_BANK',
      paymentMethod: 'BANK_DEBIT',
      financialInstrumentId: 'bank_ok',
    });
    expect(payRefusal(m, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD' })).toMatch(/being paid/);
  });

  it('leaves a declined customer payment for the customer to pay again, where a scheduled one fails', () => {
    const declined = { status: 'DECLINED' as const, providerRef: 'sbx_1', code: 'do_not_honor', retryable: false };
    const byCustomer = newMachine(plan({ financialInstrumentId: undefined }));
    transition(byCustomer, 'OPEN', iso(t0 + DAY));
    applyPayment(byCustomer, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_declined' });
    startCall(byCustomer, iso(t0 + DAY));
    applyResult(byCustomer, declined, t0 + DAY, DUNNING, { customerMayRetry: true });
    expect(byCustomer).toMatchObject({
      status: 'LATE',
      failureCode: 'do_not_honor',
      retryAt: undefined,
      keyAttempt: 2,
      keyUsed: false,
    });
    expect(decide(byCustomer, t0 + 10 * DAY).kind).toBe('wait');
    expect(payRefusal(byCustomer, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD' })).toBeUndefined();
    // Paid again with another card: settled, and the customer's flag gone with it.
    applyPayment(byCustomer, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_ok' });
    startCall(byCustomer, iso(t0 + DAY));
    applyResult(byCustomer, { status: 'SETTLED', providerRef: 'sbx_2' }, t0 + DAY, DUNNING, { customerMayRetry: true });
    expect(byCustomer).toMatchObject({ status: 'SETTLED', customerPaying: undefined });

    // The same decline of a scheduled collection (or of a history from before the change) fails it.
    const scheduled = newMachine(plan({ financialInstrumentId: 'card_declined' }));
    transition(scheduled, 'OPEN', iso(t0 + DAY));
    startCall(scheduled, iso(t0 + 2 * DAY));
    applyResult(scheduled, declined, t0 + 2 * DAY, DUNNING, { customerMayRetry: true });
    expect(scheduled.status).toBe('FAILED');
    const before = newMachine(plan());
    transition(before, 'OPEN', iso(t0 + DAY));
    applyPayment(before, { appId: 'SANDBOX_CARD', paymentMethod: 'CARD', financialInstrumentId: 'card_declined' });
    startCall(before, iso(t0 + DAY));
    applyResult(before, declined, t0 + DAY, DUNNING);
    expect(before.status).toBe('FAILED');
  });

  it('cancels only what is not being paid or final', () => {
    const m = newMachine(plan());
    expect(changeRefusal(m, 'cancel')).toBeUndefined();
    applyCancel(m, iso(t0));
    expect(m).toMatchObject({ status: 'CANCELLED', cancelledAt: iso(t0) });
    expect(changeRefusal(m, 'cancel')).toMatch(/CANCELLED/);
    expect(() => transition(m, 'OPEN', iso(t0))).toThrow(/illegal transition/);
  });

  it('settles once per payment, and counts what settled each time', () => {
    const m = settledCard();
    expect(m).toMatchObject({ status: 'SETTLED', settledAmountMinor: '1000', returnedAmountMinor: '0', keyAttempt: 1 });
  });

  it('recollects a payment returned for a retryable code: RETURNED, then LATE on the dunning schedule under a new key', () => {
    const m = settledCard();
    expect(
      reverses(m, {
        status: 'RETURNED',
        providerRef: 'sbx_1',
        kind: 'RETURN',
        code: 'insufficient_funds',
        appId: 'SANDBOX_BANK',
      }),
    ).toBe(false);
    expect(reverses(m, { status: 'RETURNED', providerRef: 'other', kind: 'RETURN', code: 'insufficient_funds' })).toBe(
      false,
    );
    const reversal = { status: 'RETURNED', providerRef: 'sbx_1', kind: 'RETURN', code: 'insufficient_funds' } as const;
    expect(reverses(m, reversal)).toBe(true);
    applyReturn(m, reversal, t0 + 60 * DAY, DUNNING);
    expect(m).toMatchObject({
      status: 'LATE',
      returnCode: 'insufficient_funds',
      returnedAt: iso(t0 + 60 * DAY),
      returnedAmountMinor: '1000',
      settledAmountMinor: '1000',
      failureCode: 'returned:insufficient_funds',
      keyAttempt: 2,
      keyUsed: false,
      retryAt: iso(t0 + 61 * DAY),
    });
    expect(decide(m, t0 + 61 * DAY)).toEqual({ kind: 'call' });
    // Settled again: twice collected, once returned.
    startCall(m, iso(t0 + 61 * DAY));
    applyResult(m, { status: 'SETTLED', providerRef: 'sbx_2' }, t0 + 61 * DAY, DUNNING);
    expect(m).toMatchObject({ status: 'SETTLED', settledAmountMinor: '2000', returnedAmountMinor: '1000' });
  });

  it('fails a returned payment under the FAIL policy, a chargeback always, and a return with no dunning left', () => {
    const reversal = { status: 'RETURNED', providerRef: 'sbx_1', kind: 'RETURN', code: 'insufficient_funds' } as const;
    const failPolicy = settledCard();
    applyReturn(failPolicy, reversal, t0 + 9 * DAY, { ...DUNNING, returnsPolicy: 'FAIL' });
    expect(failPolicy).toMatchObject({ status: 'FAILED', failedAt: iso(t0 + 9 * DAY), returnedAt: iso(t0 + 9 * DAY) });

    const chargedBack = settledCard();
    applyReturn(chargedBack, { ...reversal, kind: 'CHARGEBACK', code: 'fraudulent' }, t0 + 9 * DAY, DUNNING);
    expect(chargedBack).toMatchObject({
      status: 'FAILED',
      failureCode: 'charged_back:fraudulent',
      returnCode: 'fraudulent',
    });

    const closed = settledCard();
    applyReturn(closed, { ...reversal, code: 'account_closed' }, t0 + 9 * DAY, DUNNING);
    expect(closed.status).toBe('FAILED');

    const dunned = settledCard();
    dunned.declines = DUNNING.dunningDelaysMs.length;
    applyReturn(dunned, reversal, t0 + 9 * DAY, DUNNING);
    expect(dunned.status).toBe('FAILED');

    // Told only under a secret replaced since (one that may have leaked): a forged return would charge again.
    const underReplaced = settledCard();
    const toldUnderReplaced = { ...reversal, underReplacedSecret: true } as const;
    applyReturn(underReplaced, toldUnderReplaced, t0 + 9 * DAY, DUNNING, { replacedSecretHolds: true });
    expect(underReplaced).toMatchObject({
      status: 'FAILED',
      failureCode: 'returned_replaced_secret:insufficient_funds',
      returnedAmountMinor: '1000',
    });
    // The tenant, having checked with its provider, may collect it again.
    expect(retryRefusal(underReplaced)).toBeUndefined();
    // But not in full once a part was given back first (stated by the provider): a new order, as for any return.
    const partGivenBack = settledCard();
    applyReturn(partGivenBack, { ...toldUnderReplaced, amountMinor: '700' }, t0 + 9 * DAY, DUNNING, {
      replacedSecretHolds: true,
    });
    expect(partGivenBack).toMatchObject({
      status: 'FAILED',
      failureCode: 'returned_replaced_secret:insufficient_funds',
    });
    expect(retryRefusal(partGivenBack)).toMatch(/new order/);
    // A chargeback so told says so too.
    const chargedBackUnderReplaced = settledCard();
    applyReturn(
      chargedBackUnderReplaced,
      { ...toldUnderReplaced, kind: 'CHARGEBACK', code: 'fraudulent' },
      t0 + 9 * DAY,
      DUNNING,
      {
        replacedSecretHolds: true,
      },
    );
    expect(chargedBackUnderReplaced).toMatchObject({
      status: 'FAILED',
      failureCode: 'charged_back_replaced_secret:fraudulent',
    });
    // A history from before the patch replays as it ran: collected again.
    const beforePatch = settledCard();
    applyReturn(beforePatch, toldUnderReplaced, t0 + 9 * DAY, DUNNING);
    expect(beforePatch).toMatchObject({ status: 'LATE', failureCode: 'returned:insufficient_funds' });
  });

  it('takes back only what was not refunded of a payment, and refunds no more than is left', () => {
    const m = settledCard();
    m.refunds.push(
      refund({ amountMinor: '300', status: 'SUCCEEDED' }),
      refund({ number: 2, amountMinor: '200', status: 'FAILED' }),
    );
    expect(refundableOf(m)).toBe(700n);
    m.refunds.push(refund({ number: 3, amountMinor: '100', status: 'PENDING' }));
    expect(refundableOf(m)).toBe(600n);
    applyReturn(
      m,
      { status: 'RETURNED', providerRef: 'sbx_1', kind: 'RETURN', code: 'insufficient_funds' },
      t0 + 9 * DAY,
      DUNNING,
    );
    expect(m.returnedAmountMinor).toBe('700');
  });

  it('refunds no more of a payment than it took, though an earlier payment of the instruction left more', () => {
    // 1000 paid, 600 of it charged back: the instruction fails; retried for 600, which settles.
    const m = settledCard();
    applyReturn(
      m,
      { status: 'RETURNED', providerRef: 'sbx_1', kind: 'CHARGEBACK', code: 'fraudulent', amountMinor: '600' },
      t0 + 9 * DAY,
      DUNNING,
    );
    expect(m).toMatchObject({ status: 'FAILED', returnedAmountMinor: '600' });
    applyRetry(m, {}, t0 + 10 * DAY);
    applyAmendment(m, { amountMinor: '600' }, t0 + 10 * DAY);
    startCall(m, iso(t0 + 10 * DAY));
    applyResult(m, { status: 'SETTLED', providerRef: 'sbx_2' }, t0 + 10 * DAY, DUNNING);
    expect(m).toMatchObject({ status: 'SETTLED', settledAmountMinor: '1600', providerRef: 'sbx_2' });
    // The instruction has 1000 left (1600 - 600), its last payment 600: a refund, of that payment, takes 600 at most.
    expect(refundableOf(m)).toBe(600n);
    m.refunds.push(refund({ amountMinor: '250', paymentRef: 'sbx_2', status: 'SUCCEEDED' }));
    expect(refundableOf(m)).toBe(350n);
    // A refund of the earlier payment counts against the instruction, not against the last payment.
    m.refunds.push(refund({ number: 2, amountMinor: '500', paymentRef: 'sbx_1', status: 'SUCCEEDED' }));
    expect(refundableOf(m)).toBe(250n);
  });

  it('collects no payment again once it was refunded before it was taken back, but one whose refund is under way', () => {
    const reversal = { status: 'RETURNED', providerRef: 'sbx_1', kind: 'RETURN', code: 'insufficient_funds' } as const;
    // Refunded in full, then returned: nothing is owed, nothing is collected.
    const refunded = settledCard();
    refunded.refunds.push(refund({ amountMinor: '1000', status: 'SUCCEEDED' }));
    applyReturn(refunded, reversal, t0 + 9 * DAY, DUNNING, { refundsHold: true });
    expect(refunded).toMatchObject({ status: 'FAILED', returnedAmountMinor: '0', retryAt: undefined });
    expect(decide(refunded, t0 + 30 * DAY).kind).not.toBe('call');
    // Refunded in part: what is owed is not the instruction's amount either.
    const partly = settledCard();
    partly.refunds.push(refund({ amountMinor: '300', status: 'SUCCEEDED' }));
    applyReturn(partly, reversal, t0 + 9 * DAY, DUNNING, { refundsHold: true });
    expect(partly).toMatchObject({ status: 'FAILED', returnedAmountMinor: '700' });
    // Nor is either retried: a retry would charge the instruction's whole amount.
    for (const m of [refunded, partly]) expect(retryRefusal(m)).toMatch(/refunded first.* new order/);
    // An amendment's refusal sends the tenant there too, not to a retry.
    expect(changeRefusal(partly, 'amend')).toMatch(/FAILED; .*\(collect what is still owed with a new order\)$/);
    // Nor one carried from a run before the machine kept that: its refunds say it.
    const carried = settledCard();
    carried.refunds.push(refund({ amountMinor: '300', status: 'SUCCEEDED' }));
    applyReturn(carried, reversal, t0 + 9 * DAY, DUNNING, { refundsHold: true });
    delete carried.refundedBeforeReturn;
    expect(retryRefusal(carried)).toMatch(/refunded first/);
    // Returned whole for a code that is not collected again, it can be retried.
    const whole = settledCard();
    applyReturn(whole, { ...reversal, code: 'account_closed' }, t0 + 9 * DAY, DUNNING, { refundsHold: true });
    expect(whole.status).toBe('FAILED');
    expect(retryRefusal(whole)).toBeUndefined();
    expect(changeRefusal(whole, 'amend')).toMatch(/retry it with POST …\/retry/);
    // A history from before the change replays as it ran: collected again.
    const before = settledCard();
    before.refunds.push(refund({ amountMinor: '1000', status: 'SUCCEEDED' }));
    applyReturn(before, reversal, t0 + 9 * DAY, DUNNING);
    expect(before.status).toBe('LATE');
    // Failing later on a decline of the payment collected again, it can be retried as any.
    transition(before, 'FAILED', iso(t0 + 20 * DAY));
    before.failureCode = 'declined:card_declined';
    expect(retryRefusal(before)).toBeUndefined();
    // Retried (as a history from before the refusal may), its next failure is its own.
    applyRetry(partly, {}, t0 + 10 * DAY);
    expect(partly.refundedBeforeReturn).toBeUndefined();
    // A refund under way, failed, or of another payment holds nothing back: the whole payment was taken back.
    for (const other of [
      refund({ amountMinor: '300', status: 'PENDING' }),
      refund({ amountMinor: '300', status: 'FAILED' }),
      refund({ amountMinor: '300', status: 'SUCCEEDED', paymentRef: 'sbx_0' }),
    ]) {
      const m = settledCard();
      m.refunds.push(other);
      applyReturn(m, reversal, t0 + 9 * DAY, DUNNING, { refundsHold: true });
      expect(m, other.status).toMatchObject({ status: 'LATE', returnedAmountMinor: '1000' });
    }
  });

  it('counts what the provider says it took back, and collects nothing again when a refund still under way here was made first', () => {
    const taking = (amountMinor: string) =>
      ({ status: 'RETURNED', providerRef: 'sbx_1', kind: 'RETURN', code: 'insufficient_funds', amountMinor }) as const;
    // The refund went through at the provider before the return; its callback has not come yet.
    const refundedThere = settledCard();
    refundedThere.refunds.push(refund({ amountMinor: '300', status: 'PENDING' }));
    applyReturn(refundedThere, taking('700'), t0 + 9 * DAY, DUNNING);
    expect(refundedThere).toMatchObject({ status: 'FAILED', returnedAmountMinor: '700', retryAt: undefined });
    expect(retryRefusal(refundedThere)).toMatch(/refunded first/);
    // The whole payment taken back, a refund still pending there too: collected again, as owed.
    const wholly = settledCard();
    wholly.refunds.push(refund({ amountMinor: '300', status: 'PENDING' }));
    applyReturn(wholly, taking('1000'), t0 + 9 * DAY, DUNNING);
    expect(wholly).toMatchObject({ status: 'LATE', returnedAmountMinor: '1000' });
    // Never more than was paid.
    const over = settledCard();
    applyReturn(over, taking('5000'), t0 + 9 * DAY, DUNNING);
    expect(over).toMatchObject({ status: 'LATE', returnedAmountMinor: '1000' });
  });

  it('expires arrears with nothing planned after the expiry, but never one whose outcome is unknown', () => {
    const m = newMachine(plan({ financialInstrumentId: undefined }));
    transition(m, 'OPEN', iso(t0));
    transition(m, 'LATE', iso(t0 + 2 * DAY));
    const expiry = 30 * DAY;
    // Without an expiry (runs from before it), it waits for ever.
    expect(decide(m, t0 + 400 * DAY)).toEqual({ kind: 'wait', why: 'waits for an amendment or a payment' });
    expect(decide(m, t0 + 3 * DAY, expiry)).toEqual({
      kind: 'wait',
      until: iso(t0 + 32 * DAY),
      why: 'waits for an amendment or a payment, then expires',
    });
    expect(nextActionAt(m, expiry)).toBe(iso(t0 + 32 * DAY));
    expect(decide(m, t0 + 32 * DAY, expiry)).toEqual({ kind: 'expire' });
    applyExpiry(m, iso(t0 + 32 * DAY));
    expect(m).toMatchObject({ status: 'FAILED', failureCode: 'expired' });

    const unknown = newMachine(plan());
    transition(unknown, 'OPEN', iso(t0));
    startCall(unknown, iso(t0 + 2 * DAY));
    applyResult(unknown, { status: 'UNANSWERED' }, t0 + 2 * DAY, DUNNING);
    expect(decide(unknown, t0 + 40 * DAY, expiry)).toEqual({ kind: 'call' });
  });

  it('retries a FAILED instruction with a new key, the dunning schedule from its start, at the date given or now', () => {
    const m = newMachine(plan({ financialInstrumentId: 'card_declined' }));
    transition(m, 'OPEN', iso(t0));
    startCall(m, iso(t0 + 2 * DAY));
    applyResult(
      m,
      { status: 'DECLINED', providerRef: 'p', code: 'do_not_honor', retryable: false },
      t0 + 2 * DAY,
      DUNNING,
    );
    expect(m.status).toBe('FAILED');
    expect(retryRefusal(m)).toBeUndefined();
    const keyBefore = m.keyAttempt;
    applyRetry(m, { financialInstrumentId: 'card_ok', dueAt: iso(t0 + 5 * DAY) }, t0 + 3 * DAY);
    expect(m).toMatchObject({
      status: 'OPEN',
      declines: 0,
      failureCode: undefined,
      keyAttempt: keyBefore,
      keyUsed: false,
      plan: expect.objectContaining({ financialInstrumentId: 'card_ok', dueAt: iso(t0 + 5 * DAY) }),
    });
    expect(decide(m, t0 + 4 * DAY)).toEqual({ kind: 'wait', until: iso(t0 + 5 * DAY), why: 'falls due' });
    expect(retryRefusal(m)).toMatch(/only a FAILED instruction/);
    expect(retryRefusal(settledCard())).toMatch(/SETTLED; only a FAILED/);
  });

  it('tells what to do instead of changing an instruction at rest', () => {
    expect(changeRefusal(settledCard(), 'amend')).toMatch(/refund it with POST …\/refunds/);
  });
});

describe('the refund state machine', () => {
  it('calls, and ends with the provider’s answer', () => {
    const r = refund();
    expect(decideRefund(r, t0)).toEqual({ kind: 'call' });
    expect(applyRefundResult(r, { status: 'SUCCEEDED', providerRef: 'sbr_1' }, t0)).toBe(true);
    expect(r).toMatchObject({ status: 'SUCCEEDED', providerRef: 'sbr_1', succeededAt: iso(t0) });
    expect(decideRefund(r, t0)).toEqual({ kind: 'done' });
  });

  it('keeps its key through an unanswered call and asks again an hour later, never failing it', () => {
    const r = refund();
    expect(applyRefundResult(r, { status: 'UNANSWERED' }, t0)).toBe(false);
    expect(r).toMatchObject({ status: 'PENDING', unanswered: true, retryAt: iso(t0 + UNANSWERED_RETRY_MS) });
    expect(decideRefund(r, t0 + 1000).kind).toBe('wait');
    expect(decideRefund(r, t0 + UNANSWERED_RETRY_MS)).toEqual({ kind: 'call' });
    applyRefundResult(r, { status: 'UNKNOWN', code: 'http_409' }, t0 + UNANSWERED_RETRY_MS);
    expect(r.status).toBe('PENDING');
    // Answered PENDING under its key at last: pending, no longer unknown.
    applyRefundResult(r, { status: 'PENDING', providerRef: 'sbr_u' }, t0 + 2 * UNANSWERED_RETRY_MS);
    expect(r).toMatchObject({ status: 'PENDING', unanswered: false, failureCode: undefined });
    // Refused before anything could have reached the provider: nothing was refunded.
    const rejected = refund();
    applyRefundResult(rejected, { status: 'REJECTED', code: 'provider_rejected:payment_returned' }, t0);
    expect(rejected).toMatchObject({ status: 'FAILED', failureCode: 'provider_rejected:payment_returned' });
  });

  it('waits for a PENDING refund’s callback, asking the provider when it does not come', () => {
    const r = refund();
    applyRefundResult(r, { status: 'PENDING', providerRef: 'sbr_2' }, t0);
    expect(decideRefund(r, t0)).toEqual({
      kind: 'wait',
      until: iso(t0 + STATUS_POLL_DELAYS_MS[0]),
      why: 'awaits the provider',
    });
    expect(decideRefund(r, t0 + STATUS_POLL_DELAYS_MS[0])).toEqual({ kind: 'ask', providerRef: 'sbr_2' });
    stillPending(r, t0 + STATUS_POLL_DELAYS_MS[0]);
    expect(r.pending?.nextPollAt).toBe(iso(t0 + STATUS_POLL_DELAYS_MS[0] + STATUS_POLL_DELAYS_MS[1]));
    // A refusal to say is shown while it lasts; another failure code (an earlier unanswered call) is kept.
    r.failureCode = 'provider_unavailable';
    stillPending(r, t0 + DAY, 'app_not_installed');
    expect(r).toMatchObject({ status: 'PENDING', failureCode: 'status_refused:app_not_installed' });
    stillPending(r, t0 + 2 * DAY);
    expect(r.failureCode).toBeUndefined();
    r.failureCode = 'provider_unavailable';
    stillPending(r, t0 + 3 * DAY);
    expect(r.failureCode).toBe('provider_unavailable');
    r.pending!.result = { status: 'FAILED', providerRef: 'sbr_2', code: 'payment_returned' };
    const step = decideRefund(r, t0 + STATUS_POLL_DELAYS_MS[0] + 1);
    expect(step).toEqual({ kind: 'finish', result: r.pending!.result });
  });
});

/** A card collection settled under its first key, as provider reference sbx_1. */
function settledCard() {
  const m = newMachine(plan());
  transition(m, 'OPEN', iso(t0 + DAY));
  startCall(m, iso(t0 + 2 * DAY));
  applyResult(m, { status: 'SETTLED', providerRef: 'sbx_1' }, t0 + 2 * DAY, DUNNING);
  return m;
}

function refund(overrides: Partial<RefundMachine> = {}): RefundMachine {
  return {
    refundId: 'r-1',
    instructionRef: 'premium-1',
    number: 1,
    amountMinor: '400',
    currency: 'EUR',
    paymentRef: 'sbx_1',
    status: 'PENDING',
    createdAt: iso(t0),
    attempts: 0,
    unanswered: false,
    revision: 0,
    ...overrides,
  };
}
