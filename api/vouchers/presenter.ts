import type { Voucher } from '../../domain/voucher-catalog.js';
import type { VoucherGroup } from '../../db/entities/index.js';
import { formatAmount } from '../../domain/money.js';

/** Amounts in the voucher's (first) currency, as decimal strings like every amount of the API. */
export function presentVoucher(voucher: Voucher) {
  const currency = voucher.currencies[0];
  const amount = (minor: string | undefined) => (minor === undefined ? null : formatAmount(minor, currency));
  return {
    voucherId: voucher.voucherId,
    appId: 'SANDBOX_VOUCHERS',
    brand: voucher.brand,
    name: voucher.name,
    countries: voucher.countries,
    currencies: voucher.currencies,
    valueType: voucher.valueType,
    fixedValues: voucher.fixedValuesMinor?.map((minor) => formatAmount(minor, currency)) ?? null,
    minAmount: amount(voucher.minAmountMinor),
    maxAmount: amount(voucher.maxAmountMinor),
  };
}

export function presentVoucherGroup(group: VoucherGroup) {
  return {
    voucherGroupId: group.id,
    name: group.name,
    vouchers: group.vouchers,
    createdAt: group.createdAt.toISOString(),
    updatedAt: group.updatedAt.toISOString(),
  };
}
