/**
 * The sandbox provider's documented test instruments. Any other instrument settles at once.
 * Kept in one table so the README, the server and the tests agree.
 */
export const SANDBOX_TEST_INSTRUMENTS = {
  card_declined: { kind: 'decline', code: 'do_not_honor', retryable: false },
  card_fraud: { kind: 'decline', code: 'suspected_fraud', retryable: false },
  card_insufficient_funds: { kind: 'decline', code: 'insufficient_funds', retryable: true },
  card_flaky: { kind: 'fail-first-attempt' },
} as const;

export type SandboxInstrument = keyof typeof SANDBOX_TEST_INSTRUMENTS;
