/** A voucher product as catalogs describe it: fixed face values, or any amount in a range. Minor units as digit strings. */
export interface VoucherTerms {
  /** ISO 3166-1 alpha-2 codes of the countries the voucher is sold in. */
  countries: string[];
  /** ISO 4217 codes the voucher can be bought in. */
  currencies: string[];
  valueType: 'FIXED' | 'VARIABLE';
  fixedValuesMinor?: string[];
  minAmountMinor?: string;
  maxAmountMinor?: string;
}

/** Whether a voucher can be issued for this amount in this currency (and, when given, country). */
export function voucherAccepts(
  voucher: VoucherTerms,
  amountMinor: bigint,
  currency: string,
  country?: string,
): boolean {
  if (!voucher.currencies.includes(currency)) return false;
  if (country !== undefined && !voucher.countries.includes(country)) return false;
  if (voucher.valueType === 'FIXED')
    return (voucher.fixedValuesMinor ?? []).some((value) => BigInt(value) === amountMinor);
  if (voucher.minAmountMinor !== undefined && amountMinor < BigInt(voucher.minAmountMinor)) return false;
  if (voucher.maxAmountMinor !== undefined && amountMinor > BigInt(voucher.maxAmountMinor)) return false;
  return true;
}
