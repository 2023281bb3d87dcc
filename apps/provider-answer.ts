import { holdsBankAccountNumber } from '../domain/bank-account-number.js';
import { ownCode, type PaymentOutcome, type RefundOutcome, type StatedAmount } from '../domain/payment-outcome.js';
import { paymentDataIn } from '../domain/payment-data.js';

/**
 * What a provider answered about a payment, in the connector's words, before anything of it is
 * believed: each field is checked here for type, length and characters, so that nothing a provider
 * sends can reach the workflow's history, the read model or a webhook unchecked.
 */
export interface ProviderAnswer {
  providerRef: unknown;
  status: unknown;
  declineCode?: unknown;
  retryable?: unknown;
  voucherCode?: unknown;
  /** RETURNED: the bank's return code. CHARGED_BACK: the dispute's reason (`reason` is taken as well). */
  returnCode?: unknown;
  reason?: unknown;
  /** RETURNED, CHARGED_BACK: the money taken back, in the payment's currency (optional). */
  returnedAmountMinor?: unknown;
  /** SETTLED: the money moved, both or neither (`otherMoneyThanAsked` holds it against what was asked). */
  amountMinor?: unknown;
  currency?: unknown;
}

/** What a provider answered about a refund, unchecked. */
export interface RefundAnswer {
  providerRef: unknown;
  status: unknown;
  failureCode?: unknown;
  /** SUCCEEDED: the money refunded, both or neither (`otherMoneyThanAsked` holds it against what was asked). */
  amountMinor?: unknown;
  currency?: unknown;
}

/**
 * An answer that is not a well-formed payment: the provider may still have moved money, so it is
 * handled as no answer at all (retried under the same key), never as a refusal.
 */
export class MalformedAnswerError extends Error {
  override name = 'MalformedAnswerError';
}

/** A provider's reference of a payment: what its column holds. */
export const PROVIDER_REF = /^[\x21-\x7e]{1,128}$/;
const CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const BAD_AMOUNT = 'amountMinor and currency, when stated, must be both: whole minor units and a currency code';
const AMOUNT_MINOR = /^(?:0|[1-9]\d{0,18})$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * A provider's reference (of a payment, a refund, a voucher issued) fit to keep: the column's
 * characters, and no bank account number (ARCHITECTURE.md, "Money, dates, references"). Not read for
 * card numbers: numeric references and gift codes of 16 digits are common, and pass the Luhn check one
 * time in ten; an answer refused as malformed leaves its payment's outcome unknown.
 */
export function isProviderRef(value: unknown, format = PROVIDER_REF): value is string {
  return typeof value === 'string' && format.test(value) && !holdsBankAccountNumber(value);
}

/** A decline, return or failure code fit to keep and tell: a word, never a card or bank account number. */
export function isCode(value: unknown): value is string {
  return typeof value === 'string' && CODE.test(value) && paymentDataIn(value) === undefined;
}

/** The outcome an answer states, or a MalformedAnswerError saying what is wrong with it. */
export function checkedOutcome(answer: ProviderAnswer | undefined, who: string): PaymentOutcome {
  const bad = (what: string) => new MalformedAnswerError(`${who} answered a malformed payment: ${what}`);
  if (!answer || typeof answer !== 'object') throw bad('no JSON object');
  const { providerRef, status, declineCode, retryable, voucherCode } = answer;
  if (!isProviderRef(providerRef)) {
    throw bad('providerRef must be 1–128 printable ASCII characters, and no bank account number');
  }
  if (status === 'SETTLED') {
    const amount = statedAmount(answer);
    if (amount === null) {
      throw bad(BAD_AMOUNT);
    }
    const settled = { status, providerRef, ...(amount ? { amount } : {}) } as const;
    if (voucherCode === undefined) return settled;
    if (!isProviderRef(voucherCode, CODE))
      throw bad('voucherCode must be 1–64 letters, digits or _.:-, and no bank account number');
    return { ...settled, voucherCode };
  }
  if (status === 'PENDING') return { status, providerRef };
  if (status === 'RETURNED' || status === 'CHARGED_BACK') {
    const code = answer.returnCode ?? answer.reason;
    if (!isCode(code)) throw bad('returnCode must be 1–64 letters, digits or _.:-, and no card or account number');
    const reversal = {
      status: 'RETURNED',
      providerRef,
      kind: status === 'RETURNED' ? 'RETURN' : 'CHARGEBACK',
      code,
    } as const;
    const { returnedAmountMinor } = answer;
    if (returnedAmountMinor === undefined) return reversal;
    const minor = minorUnits(returnedAmountMinor);
    if (minor === undefined) throw bad('returnedAmountMinor, when stated, must be whole minor units');
    return { ...reversal, amountMinor: minor };
  }
  if (status !== 'DECLINED') throw bad('status must be SETTLED, DECLINED, PENDING, RETURNED or CHARGED_BACK');
  if (declineCode !== undefined && !isCode(declineCode)) {
    throw bad('declineCode must be 1–64 letters, digits or _.:-, and no card or account number');
  }
  if (retryable !== undefined && typeof retryable !== 'boolean') throw bad('retryable must be true or false');
  return { status, providerRef, code: ownCode(declineCode ?? 'declined'), retryable: retryable ?? false };
}

/**
 * The money an answer says it moved: undefined when it does not say, null when it says it badly. An
 * "amount" that is a card number is said badly: it would reach the history and the logs as the answer.
 */
function statedAmount({ amountMinor, currency }: ProviderAnswer | RefundAnswer): StatedAmount | undefined | null {
  if (amountMinor === undefined && currency === undefined) return undefined;
  const minor = minorUnits(amountMinor);
  if (minor === undefined) return null;
  if (typeof currency !== 'string' || !CURRENCY.test(currency)) return null;
  return { amountMinor: minor, currency };
}

/** Whole minor units as a string (a number is taken while it is exact); undefined for anything else, a card number too. */
function minorUnits(value: unknown): string | undefined {
  const minor = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof minor !== 'string' || !AMOUNT_MINOR.test(minor) || paymentDataIn(minor) !== undefined) return undefined;
  return minor;
}

/**
 * Why a settlement (or a refund's success) stating an amount or currency other than was asked is not
 * believed: money moved, but not what the instruction (or refund) says, so its outcome is unknown (the
 * key kept) until the provider says it right or a tenant admin resolves it. Undefined when it is what
 * was asked, or states nothing.
 */
export function otherMoneyThanAsked(
  outcome: PaymentOutcome | RefundOutcome,
  asked: StatedAmount,
  who: string,
): string | undefined {
  if ((outcome.status !== 'SETTLED' && outcome.status !== 'SUCCEEDED') || !outcome.amount) return undefined;
  const { amountMinor, currency } = outcome.amount;
  if (BigInt(amountMinor) === BigInt(asked.amountMinor) && currency === asked.currency) return undefined;
  const what = outcome.status === 'SETTLED' ? ['settled', 'payment'] : ['refunded', 'refund'];
  return `${who} ${what[0]} ${amountMinor} ${currency} (minor units) of a ${what[1]} of ${asked.amountMinor} ${asked.currency}`;
}

/** The refund an answer states, or a MalformedAnswerError (handled as no answer: the key is kept). */
export function checkedRefund(answer: RefundAnswer | undefined, who: string): RefundOutcome {
  const bad = (what: string) => new MalformedAnswerError(`${who} answered a malformed refund: ${what}`);
  if (!answer || typeof answer !== 'object') throw bad('no JSON object');
  const { providerRef, status, failureCode } = answer;
  if (!isProviderRef(providerRef)) {
    throw bad('providerRef must be 1–128 printable ASCII characters, and no bank account number');
  }
  if (status === 'SUCCEEDED') {
    const amount = statedAmount(answer);
    if (amount === null) {
      throw bad(BAD_AMOUNT);
    }
    return { status, providerRef, ...(amount ? { amount } : {}) };
  }
  if (status === 'PENDING') return { status, providerRef };
  if (status !== 'FAILED') throw bad('status must be SUCCEEDED, PENDING or FAILED');
  if (failureCode !== undefined && !isCode(failureCode)) {
    throw bad('failureCode must be 1–64 letters, digits or _.:-, and no card or account number');
  }
  return { status, providerRef, code: ownCode(failureCode ?? 'refund_failed') };
}
