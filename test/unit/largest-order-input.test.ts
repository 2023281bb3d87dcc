import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { MAX_INSTRUCTIONS_PER_ORDER, MAX_REFUNDS_PER_ORDER } from '../../orders/contract/limits.js';
import { planOrder } from '../../orders/order-plans.js';
import type { Resolution } from '../../orders/scheme-resolution.js';
import { workflowInputOf } from '../../orders/start-order.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';
import type { PaymentOrderInput } from '../../orders/contract/messages.js';
import { packState } from '../../orders/workflow/continued-state.js';
import type { PaymentOrderWorkflowInput } from '../../orders/workflow/payment-order.workflow.js';
import { OrderEntity } from '../../orders/workflow/order-entity.js';
import { TAKEN_UPDATES_KEPT } from '../../orders/workflow/taken-updates.js';

// Temporal refuses a payload over 2 MB (the server's limit.blobSize.error): a workflow start whose
// input is over it fails, and the reconciler would try it again for ever. The largest order the API
// takes must start.
const TEMPORAL_BLOB_LIMIT = 2 * 1024 * 1024;

/** The largest order the API takes, as its workflow is started: every field at its longest. */
function largestOrderInput(): PaymentOrderInput {
  const ref = (prefix: string, i: number) => `${prefix}${i}`.padEnd(50, 'x');
  // Every field at its longest: refs of 50, an instrument id of 100, a payout's four methods offered,
  // its voucher option with 20 voucher groups.
  const input = {
    orderRef: ref('o', 0),
    customerRef: ref('c', 0),
    metadata: Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`k${k}`.padEnd(40, 'k'), 'v'.repeat(500)])),
    instructions: Array.from({ length: MAX_INSTRUCTIONS_PER_ORDER }, (_, i) => ({
      instructionRef: ref('i', i),
      direction: 'CREDIT',
      amount: '99999999999.99',
      currency: 'EUR',
      country: 'FR',
      openDate: '2030-01-01T00:00:00.000Z',
      dueDate: '2030-02-01T00:00:00.000Z',
      customerRef: ref('c', i),
      financialInstrumentId: 'f'.repeat(100),
      schemeId: randomUUID(),
      metadata: Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`k${k}`.padEnd(40, 'k'), 'v'.repeat(500)])),
    })),
  } as unknown as CreateOrderInput;
  const options = (['CARD', 'BANK_DEBIT', 'BANK_TRANSFER', 'VOUCHER'] as const).map((paymentMethod, p) => ({
    paymentMethod,
    appId: 'A'.repeat(64),
    priority: p,
    voucherGroupIds: paymentMethod === 'VOUCHER' ? Array.from({ length: 20 }, () => randomUUID()) : [],
    preNotificationDays: 60,
  }));
  const resolutions: Resolution[] = input.instructions.map(() => ({
    schemeId: randomUUID(),
    schemeVersion: 2_000_000_000,
    options,
    chosen: options[0],
  }));
  const tenant = {
    id: randomUUID(),
    timeZone: 'America/Argentina/ComodRivadavia',
    dunningRetryDelaysDays: [1, 2, 3],
  };
  const { order, instructions } = planOrder(tenant, input, resolutions);
  return workflowInputOf(order, instructions);
}

describe('the largest order the API takes', () => {
  it('starts with an input well under Temporal’s payload limit', () => {
    const payload = defaultPayloadConverter.toPayload(largestOrderInput());
    const bytes = payload.data!.length;
    // 1.07 MB (2026-12-05), its options most of it: room for the state a continued run carries on top
    // (progress and refunds), though not for twice as much. Metadata stays in the read model: 500
    // instructions of 25 kB each would be 12 MB here.
    expect(bytes).toBeLessThan(TEMPORAL_BLOB_LIMIT * 0.6);
    expect(bytes).toBeGreaterThan(MAX_INSTRUCTIONS_PER_ORDER * 1000);
  });

  it('continues as new with every instruction as far on as it goes and the most refunds it takes, under the limit', () => {
    const input = largestOrderInput();
    const state = OrderEntity.initialState(input);
    const text = (length: number) => 'r'.repeat(length);
    const at = '2030-02-01T00:00:00.000Z';
    const amount = '9'.repeat(18);
    const reversal = {
      status: 'RETURNED',
      providerRef: text(128),
      kind: 'CHARGEBACK',
      code: text(64),
      amountMinor: amount,
    };
    // Every field a machine may hold at once, at the longest its checks allow: a provider's references
    // of 128, codes of 64.
    for (const machine of state.instructions) {
      Object.assign(machine, {
        status: 'PROCESSING',
        toldStatus: 'PROCESSING',
        attempts: 99,
        keyAttempt: 99,
        keyUsed: true,
        declines: 9,
        mandateChecks: 9,
        events: 99,
        revision: 999,
        providerRef: text(128),
        voucherCode: text(64),
        failureCode: text(64),
        returnCode: text(64),
        returnedRef: text(128),
        settledAmountMinor: amount,
        refundedAmountMinor: amount,
        returnedAmountMinor: amount,
        noticeFor: `${amount}@${at}`,
        ...Object.fromEntries(
          ['openedAt', 'processingAt', 'lateAt', 'settledAt', 'failedAt', 'returnedAt', 'retryAt'].map((k) => [k, at]),
        ),
        pending: { providerRef: text(128), polls: 99, nextPollAt: at, result: reversal, reversal, refused: text(64) },
      });
    }
    // Refunds the same: a reason of 200 characters JSON writes 6 bytes each, spread over the instructions.
    for (let n = 0; n < MAX_REFUNDS_PER_ORDER; n += 1) {
      const machine = state.instructions[n % state.instructions.length];
      machine.refunds.push({
        refundId: randomUUID(),
        instructionRef: machine.plan.instructionRef,
        number: machine.refunds.length + 1,
        amountMinor: amount,
        currency: 'EUR',
        reason: '\u0001'.repeat(200),
        paymentRef: text(128),
        appId: 'A'.repeat(64),
        status: 'PENDING',
        toldStatus: 'PENDING',
        providerRef: text(128),
        failureCode: text(64),
        createdAt: at,
        succeededAt: at,
        failedAt: at,
        attempts: 99,
        calling: true,
        unanswered: true,
        retryAt: at,
        pending: {
          providerRef: text(128),
          polls: 99,
          nextPollAt: at,
          result: { status: 'FAILED', providerRef: text(128), code: text(64) },
          refused: text(64),
        },
        revision: 999,
      });
    }
    state.takenUpdates = Array.from({ length: TAKEN_UPDATES_KEPT }, () => text(200));
    state.earlyResults = Array.from({ length: 20 }, () => ({ ...reversal, appId: 'A'.repeat(64) }) as never);
    // Returns kept for payments of unknown outcome: at most 20 too (keptWith), each naming its instruction.
    state.returnsOfUnknown = state.instructions.slice(0, 20).map((machine) => ({
      instructionRef: machine.plan.instructionRef,
      result: { ...reversal, appId: 'A'.repeat(64) } as never,
    }));
    state.earlyRefundResults = Array.from({ length: 20 }, () => ({
      status: 'FAILED' as const,
      providerRef: text(128),
      code: text(64),
      appId: 'A'.repeat(64),
    }));
    const continued: PaymentOrderWorkflowInput = { ...input, instructions: [], continued: packState(state) };
    const bytes = defaultPayloadConverter.toPayload(continued).data!.length;
    // 1.71 MB (2026-12-07; 1.70 MB before the 20 kept returns): each instruction's progress about 2 kB,
    // each refund about 3 kB, the options carried once per distinct list (2.41 MB, over the limit, when
    // every instruction carried its own).
    expect(bytes).toBeLessThan(TEMPORAL_BLOB_LIMIT * 0.85);
  });
});
