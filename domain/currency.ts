import currencyCodes from 'currency-codes';

/** ISO 4217 minor-unit exponent of a currency, or undefined when the code is not a currency money can be paid in. */
export function minorUnitExponent(currency: string): number | undefined {
  const entry = currencyCodes.code(currency);
  // Codes such as XXX (no currency) and XTS (testing) list only placeholder countries.
  if (!entry || entry.countries.every((c: string) => c.startsWith('Zz'))) return undefined;
  return entry.digits;
}

export function isPayableCurrency(currency: string): boolean {
  return minorUnitExponent(currency) !== undefined;
}
