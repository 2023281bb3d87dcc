import { describe, expect, it } from 'vitest';
import { refundResolutionRefusal, type RefundMachine } from '../../orders/workflow/refund-machine.js';

/** The workflow's time when the resolution is asked for. */
const NOW = Date.parse('2026-12-02T11:00:00.000Z');

const refund = (over: Partial<RefundMachine>): RefundMachine => ({
  refundId: '7f1c1c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f',
  instructionRef: 'a',
  number: 1,
  amountMinor: '300',
  currency: 'EUR',
  paymentRef: 'pay_1',
  status: 'PENDING',
  createdAt: '2026-12-02T10:00:00.000Z',
  attempts: 2,
  unanswered: true,
  revision: 0,
  ...over,
});

describe('a refund resolved by a tenant admin', () => {
  it('is one of unknown outcome, between calls', () => {
    expect(refundResolutionRefusal(refund({}), NOW)).toBeUndefined();
  });

  it('is not one the provider will still answer (unless it refused to say), one under way, or one that ended', () => {
    const pendingAtProvider = refund({
      unanswered: false,
      pending: { providerRef: 'r_1', polls: 0, nextPollAt: '2026-12-02T10:05:00.000Z' },
    });
    expect(refundResolutionRefusal(pendingAtProvider, NOW)).toMatch(/PENDING at its provider/);
    // Unless the provider refused for good to say how it ended, and is not being asked again.
    pendingAtProvider.pending!.refused = 'provider_rejected:http_404';
    expect(refundResolutionRefusal(pendingAtProvider, NOW)).toBeUndefined();
    expect(refundResolutionRefusal({ ...pendingAtProvider, calling: true }, NOW)).toMatch(/right now/);
    const calledBack = { ...pendingAtProvider.pending!, result: { status: 'SUCCEEDED' as const, providerRef: 'r_1' } };
    expect(refundResolutionRefusal({ ...pendingAtProvider, pending: calledBack }, NOW)).toMatch(/has just said how/);
    expect(refundResolutionRefusal(refund({ calling: true }), NOW)).toMatch(/being asked about .* right now/);
    // A call due now (its provider's callback prompted it) is as good as under way.
    expect(refundResolutionRefusal(refund({ retryAt: '2026-12-02T11:00:00.000Z' }), NOW)).toMatch(/right now/);
    expect(refundResolutionRefusal(refund({ retryAt: '2026-12-02T12:00:00.000Z' }), NOW)).toBeUndefined();
    expect(refundResolutionRefusal(refund({ status: 'SUCCEEDED', unanswered: false }), NOW)).toMatch(/is SUCCEEDED/);
    expect(refundResolutionRefusal(refund({ status: 'FAILED', unanswered: false }), NOW)).toMatch(/is FAILED/);
  });
});
