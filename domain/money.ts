import { minorUnitExponent } from './currency.js';
import { DomainValidationError } from './errors.js';
import { Refusal } from './refusal.js';

const DECIMAL = /^(0|[1-9]\d{0,17})(?:\.(\d+))?$/;

/**
 * The largest amount, in minor units, that the API accepts: 2^53 - 1, so that every amount is also
 * exact as a JSON number in a client's hands, and 500 of them still sum inside a PostgreSQL bigint.
 */
export const MAX_AMOUNT_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parses a decimal-string amount ("125.50") into integer minor units of `currency`.
 * Rejects more fraction digits than the currency has, so "1.005" EUR is an error, never a rounding.
 */
export function parseAmount(amount: string, currency: string): bigint {
  const exponent = minorUnitExponent(currency);
  if (exponent === undefined) {
    throw new DomainValidationError('invalid_currency', `${currency} is not an ISO 4217 currency`);
  }
  const match = DECIMAL.exec(amount);
  if (!match) {
    throw new DomainValidationError('invalid_amount', 'amount must be a positive decimal string such as "125.50"');
  }
  const [, whole, fraction = ''] = match;
  if (fraction.length > exponent) {
    throw new DomainValidationError(
      'invalid_amount_precision',
      `${currency} has ${exponent} decimal place${exponent === 1 ? '' : 's'}; got ${fraction.length}`,
    );
  }
  const minor = BigInt(whole) * 10n ** BigInt(exponent) + BigInt(fraction.padEnd(exponent, '0') || '0');
  if (minor <= 0n) throw new DomainValidationError('invalid_amount', 'amount must be greater than zero');
  if (minor > MAX_AMOUNT_MINOR) {
    throw new DomainValidationError(
      'amount_too_large',
      `amount must be at most ${formatAmount(MAX_AMOUNT_MINOR, currency)} ${currency}`,
    );
  }
  return minor;
}

/** Formats integer minor units back to the API's decimal string ("125.50"). */
export function formatAmount(minorUnits: bigint | string, currency: string): string {
  const exponent = minorUnitExponent(currency) ?? 0;
  const minor = BigInt(minorUnits);
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent > 0 ? `.${digits.slice(digits.length - exponent)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/**
 * The amount as a person reads it in `locale` ("€1,234.50", "1 234,50 €"), with exactly the decimal
 * places ISO 4217 gives the currency: Intl's own defaults (CLDR) differ for some (HUF, IQD, COP…),
 * and would show a rounded amount. The decimal string is formatted as it is, never through a float.
 */
export function displayAmount(minorUnits: bigint | string, currency: string, locale: string): string {
  const places = minorUnitExponent(currency) ?? 0;
  return new Intl.NumberFormat(locale, {
    style: 'currency',
    currency,
    minimumFractionDigits: places,
    maximumFractionDigits: places,
  }).format(formatAmount(minorUnits, currency) as Intl.StringNumericLiteral);
}

/** The amount in minor units, or a refusal naming `path` as the field at fault (too many decimals for the currency, too large…). */
export function parseAmountAt(amount: string, currency: string, path: string): bigint {
  try {
    return parseAmount(amount, currency);
  } catch (err) {
    if (!(err instanceof DomainValidationError)) throw err;
    throw Refusal.invalid([{ path, code: err.code, message: err.message }]);
  }
}
