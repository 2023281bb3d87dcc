import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { MAX_INSTRUCTIONS_PER_ORDER } from '../../orders/contract/limits.js';
import { planOrder } from '../../orders/order-plans.js';
import type { Resolution } from '../../orders/scheme-resolution.js';
import { workflowInputOf } from '../../orders/start-order.js';
import type { CreateOrderInput } from '../../orders/http/schemas.js';

// Temporal refuses a payload over 2 MB (the server's limit.blobSize.error): a workflow start whose
// input is over it fails, and the reconciler would try it again for ever. The largest order the API
// takes must start.
const TEMPORAL_BLOB_LIMIT = 2 * 1024 * 1024;

describe('the largest order the API takes', () => {
  it('starts with an input well under Temporal’s payload limit', () => {
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
    const payload = defaultPayloadConverter.toPayload(workflowInputOf(order, instructions));
    const bytes = payload.data!.length;
    // 1.07 MB (2026-12-05), its options most of it: room for the state a continued run carries on top
    // (progress and refunds), though not for twice as much. Metadata stays in the read model: 500
    // instructions of 25 kB each would be 12 MB here.
    expect(bytes).toBeLessThan(TEMPORAL_BLOB_LIMIT * 0.6);
    expect(bytes).toBeGreaterThan(MAX_INSTRUCTIONS_PER_ORDER * 1000);
  });
});
