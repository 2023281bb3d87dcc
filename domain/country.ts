import countries from 'i18n-iso-countries';

/** ISO 3166-1 alpha-2, upper case as the standard writes it. */
export function isCountryCode(value: string): boolean {
  return /^[A-Z]{2}$/.test(value) && countries.isValid(value);
}

/** Every ISO 3166-1 alpha-2 code, for the API document. */
export function countryCodes(): string[] {
  return Object.keys(countries.getAlpha2Codes()).sort();
}
