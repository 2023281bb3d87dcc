import type { VoucherTerms } from './voucher.js';

/**
 * The gift vouchers the platform's voucher app pays out (`SANDBOX_VOUCHERS`): product data, read by
 * the voucher catalog route, the order path (which vouchers a scheme offers) and the sandbox
 * provider alike. A fixed voucher is sold in a few face values only; a variable one takes any amount
 * in its range. Amounts are minor units as digit strings, like everywhere else on the wire.
 */
export interface Voucher extends VoucherTerms {
  /** What a payout names as its instrument. */
  voucherId: string;
  brand: string;
  name: string;
}

export const VOUCHER_CATALOG: readonly Voucher[] = [
  {
    voucherId: 'amazon-uk-25',
    brand: 'Amazon',
    name: 'Amazon.co.uk Gift Card £25',
    countries: ['GB'],
    currencies: ['GBP'],
    valueType: 'FIXED',
    fixedValuesMinor: ['2500'],
  },
  {
    voucherId: 'amazon-de',
    brand: 'Amazon',
    name: 'Amazon.de Gutschein',
    countries: ['DE'],
    currencies: ['EUR'],
    valueType: 'VARIABLE',
    minAmountMinor: '100',
    maxAmountMinor: '50000',
  },
  {
    voucherId: 'apple-us',
    brand: 'Apple',
    name: 'Apple Gift Card',
    countries: ['US'],
    currencies: ['USD'],
    valueType: 'VARIABLE',
    minAmountMinor: '1000',
    maxAmountMinor: '200000',
  },
  {
    voucherId: 'apple-uk',
    brand: 'Apple',
    name: 'Apple Gift Card (UK)',
    countries: ['GB'],
    currencies: ['GBP'],
    valueType: 'FIXED',
    fixedValuesMinor: ['1000', '2500', '5000', '10000'],
  },
  {
    voucherId: 'zalando-eu',
    brand: 'Zalando',
    name: 'Zalando Gift Card',
    countries: ['DE', 'FR', 'NL'],
    currencies: ['EUR'],
    valueType: 'FIXED',
    fixedValuesMinor: ['1500', '2500', '5000', '10000'],
  },
  {
    voucherId: 'ikea-fr',
    brand: 'IKEA',
    name: 'Carte cadeau IKEA',
    countries: ['FR'],
    currencies: ['EUR'],
    valueType: 'VARIABLE',
    minAmountMinor: '1000',
    maxAmountMinor: '150000',
  },
  {
    voucherId: 'ikea-ie-50',
    brand: 'IKEA',
    name: 'IKEA Gift Card €50',
    countries: ['IE'],
    currencies: ['EUR'],
    valueType: 'FIXED',
    fixedValuesMinor: ['5000'],
  },
  {
    voucherId: 'steam-wallet',
    brand: 'Steam',
    name: 'Steam Wallet Code',
    countries: ['DE', 'FR', 'NL', 'IE', 'US'],
    currencies: ['EUR', 'USD'],
    valueType: 'FIXED',
    fixedValuesMinor: ['2000', '5000', '10000'],
  },
];

export function findVoucher(voucherId: string): Voucher | undefined {
  return VOUCHER_CATALOG.find((voucher) => voucher.voucherId === voucherId);
}
