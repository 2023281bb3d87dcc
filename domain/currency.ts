import currencyCodes from 'currency-codes';

/**
 * ISO 4217 codes that name no money a customer can be paid in: the funds codes the standard marks
 * as such (indexed units, next-day dollars, WIR) and supranational units of account. Metals, bond
 * units, XTS (testing) and XXX (no currency) are recognised by their placeholder countries below.
 */
const NOT_PAYABLE = new Set(['BOV', 'CHE', 'CHW', 'CLF', 'COU', 'MXV', 'USN', 'UYI', 'UYW', 'XDR', 'XSU', 'XUA']);

/** ISO 4217 minor-unit exponent of a currency, or undefined when the code is not a currency money can be paid in. */
export function minorUnitExponent(currency: string): number | undefined {
  if (NOT_PAYABLE.has(currency)) return undefined;
  const entry = currencyCodes.code(currency);
  if (!entry || entry.countries.every((c: string) => c.startsWith('Zz'))) return undefined;
  return entry.digits;
}

export function isPayableCurrency(currency: string): boolean {
  return minorUnitExponent(currency) !== undefined;
}

/** Every payable currency code, for the API document. */
export function payableCurrencies(): string[] {
  return currencyCodes.codes().filter(isPayableCurrency);
}
