import { randomInt } from 'node:crypto';
import { voucherAccepts } from '../../domain/voucher.js';
import { findVoucher } from '../../domain/voucher-catalog.js';

/**
 * What the sandbox provider does with a payment, chosen by its instrument: the documented test
 * instruments of each app, in one place so that the README, the server and the tests agree.
 */
export type Resolution =
  { status: 'SETTLED'; voucherCode?: string } | { status: 'DECLINED'; declineCode: string; retryable: boolean };

export type CardBehaviour =
  /** Record the resolution and answer with it. */
  | { kind: 'answer'; resolution: Resolution }
  /** Record a settlement, then hold the answer so the client times out after the money moved. */
  | { kind: 'settle-then-hang' }
  /** Answer 503 and record nothing on the first call for an idempotency key; settle on later calls. */
  | { kind: 'fail-first-call' }
  /** Answer 503 and record nothing, every time. */
  | { kind: 'unavailable' };

const SETTLED: Resolution = { status: 'SETTLED' };

const CARD_INSTRUMENTS = new Map<string, CardBehaviour>([
  // Settles, then is charged back (`fraudulent`) after the sandbox's return delay.
  ['card_chargeback', { kind: 'answer', resolution: SETTLED }],
  ['card_declined', { kind: 'answer', resolution: decline('do_not_honor', false) }],
  // A token this merchant was never given (hosted-forms.ts).
  ['invalid_token', { kind: 'answer', resolution: decline('invalid_token', false) }],
  ['card_fraud', { kind: 'answer', resolution: decline('suspected_fraud', false) }],
  ['card_insufficient_funds', { kind: 'answer', resolution: decline('insufficient_funds', true) }],
  ['card_flaky', { kind: 'fail-first-call' }],
  ['card_unavailable', { kind: 'unavailable' }],
  ['card_timeout', { kind: 'settle-then-hang' }],
]);

/** `SANDBOX_CARD` debits: any instrument not listed settles at once. */
export function cardBehaviour(instrument: string): CardBehaviour {
  return CARD_INSTRUMENTS.get(instrument) ?? { kind: 'answer', resolution: SETTLED };
}

export interface BankBehaviour {
  resolution: Resolution;
  /** False for `bank_no_callback`: the payment resolves, but only a status query shows it. */
  callback: boolean;
  /** `bank_held`: PENDING, as its refunds, until the bank is told to settle it (`POST /held/{id}/settle`, a test switch). */
  held?: boolean;
}

const BANK_INSTRUMENTS = new Map<string, BankBehaviour>([
  ['bank_insufficient_funds', { resolution: decline('insufficient_funds', true), callback: true }],
  ['bank_account_closed', { resolution: decline('account_closed', false), callback: true }],
  ['invalid_token', { resolution: decline('invalid_token', false), callback: true }],
  ['mandate_not_active', { resolution: decline('mandate_not_active', false), callback: true }],
  ['bank_no_callback', { resolution: SETTLED, callback: false }],
  ['bank_held', { resolution: SETTLED, callback: true, held: true }],
  // Settles, then is returned (`insufficient_funds`) after the sandbox's return delay.
  ['bank_returned', { resolution: SETTLED, callback: true }],
]);

/** Instruments whose settled payments are taken back later, and how. */
const REVERSALS = new Map<string, { kind: 'RETURN' | 'CHARGEBACK'; code: string }>([
  ['bank_returned', { kind: 'RETURN', code: 'insufficient_funds' }],
  ['card_chargeback', { kind: 'CHARGEBACK', code: 'fraudulent' }],
]);

/** Whether (and how) a settled payment with this instrument is taken back after the return delay. */
export function reversalOf(instrument: string): { kind: 'RETURN' | 'CHARGEBACK'; code: string } | undefined {
  return REVERSALS.get(instrument);
}

/** `SANDBOX_BANK` debits and transfers resolve after a delay; any instrument not listed (`bank_ok`) settles. */
export function bankBehaviour(instrument: string): BankBehaviour {
  return BANK_INSTRUMENTS.get(instrument) ?? { resolution: SETTLED, callback: true };
}

/** `SANDBOX_VOUCHERS` payouts: the instrument names a voucher of the catalog, which issues a code. */
export function voucherPayout(voucherId: string, currency: string, amountMinor: string): Resolution {
  const voucher = findVoucher(voucherId);
  if (!voucher) return decline('invalid_voucher', false);
  if (!voucherAccepts(voucher, BigInt(amountMinor), currency)) return decline('invalid_amount', false);
  return { status: 'SETTLED', voucherCode: newVoucherCode() };
}

const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `VCH-XXXX-XXXX-XXXX`; randomInt draws without modulo bias. */
function newVoucherCode(): string {
  const groups = Array.from({ length: 3 }, () =>
    Array.from({ length: 4 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join(''),
  );
  return `VCH-${groups.join('-')}`;
}

function decline(declineCode: string, retryable: boolean): Resolution {
  return { status: 'DECLINED', declineCode, retryable };
}
