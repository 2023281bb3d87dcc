import { appServes } from './app-catalog.js';
import { minorUnitExponent } from './currency.js';
import { PAYMENT_METHODS, type PaymentMethod, type SchemeKind } from './payment-method.js';

// What the catalog of apps needs as well, in a file of its own so that neither imports the other.
export { PAYMENT_METHODS, type PaymentMethod, type SchemeKind };

export interface SchemeOption {
  appId: string;
  paymentMethods: PaymentMethod[];
  /** Lower wins when two apps offer the same method. */
  priority: number;
  /** Days before a collection's charge date its customer is told (absent: the method's default). */
  preNotificationDays?: number;
}

/**
 * How many days before a collection's charge date the customer must be told of it: SEPA's 14 days
 * for a bank debit unless agreed otherwise (a tenant may shorten it, to a day at least); nothing
 * for the others unless the scheme asks.
 */
export const DEFAULT_PRE_NOTIFICATION_DAYS: Partial<Record<PaymentMethod, number>> = { BANK_DEBIT: 14 };
/** The shortest notice a bank debit may have. */
export const MIN_BANK_DEBIT_NOTICE_DAYS = 1;

/**
 * One rule of a scheme. Empty `currencies` or `countries` match any; amounts are inclusive bounds
 * written as decimal strings in major units ("10.00"), absent means unbounded.
 */
export interface SchemeRule {
  currencies: string[];
  countries: string[];
  minAmount?: string | null;
  maxAmount?: string | null;
  options: SchemeOption[];
  /** Payout rules only: the voucher groups a VOUCHER payout may draw from. */
  voucherGroupIds?: string[];
}

export interface PaymentQuery {
  amountMinor: bigint;
  currency: string;
  country: string;
}

/** One way to pay: the method, and the app that carries it out. */
export interface ResolvedOption {
  paymentMethod: PaymentMethod;
  appId: string;
  priority: number;
  voucherGroupIds: string[];
  /** Days of notice before its charge date (absent on options resolved before notices: none). */
  preNotificationDays?: number;
}

export interface SchemeEvaluation {
  /** Index of the rule that matched, or null when none did. */
  ruleIndex: number | null;
  /** One option per payment method, best first (by priority, then as the rule lists them). */
  options: ResolvedOption[];
}

/**
 * Evaluates a scheme (ARCHITECTURE.md, "Schemes"): the first rule matching the payment's currency,
 * country and amount, and offering an app that pays in that currency and country (the catalog's
 * lists), wins; from its options, each payment method goes to the app with the lowest priority (the
 * one listed first on a tie), among those that pay there. No such rule: no options.
 */
export function evaluateScheme(rules: readonly SchemeRule[], payment: PaymentQuery): SchemeEvaluation {
  for (const [ruleIndex, rule] of rules.entries()) {
    if (!ruleMatches(rule, payment)) continue;
    const options = optionsOf(rule, payment);
    // A rule whose apps all pay elsewhere offers nothing here: a later rule (a fallback) may.
    if (options.length > 0) return { ruleIndex, options };
  }
  return { ruleIndex: null, options: [] };
}

/** A rule's options for the payment, one per method, best first. */
function optionsOf(rule: SchemeRule, payment: PaymentQuery): ResolvedOption[] {
  const best = new Map<PaymentMethod, ResolvedOption & { order: number }>();
  rule.options.forEach((option, order) => {
    if (!appServes(option.appId, payment.currency, payment.country)) return;
    for (const paymentMethod of option.paymentMethods) {
      const current = best.get(paymentMethod);
      if (!current || option.priority < current.priority) {
        best.set(paymentMethod, {
          paymentMethod,
          appId: option.appId,
          priority: option.priority,
          voucherGroupIds: rule.voucherGroupIds ?? [],
          preNotificationDays: option.preNotificationDays ?? DEFAULT_PRE_NOTIFICATION_DAYS[paymentMethod] ?? 0,
          order,
        });
      }
    }
  });
  return [...best.values()]
    .sort(
      (a, b) =>
        a.priority - b.priority ||
        a.order - b.order ||
        PAYMENT_METHODS.indexOf(a.paymentMethod) - PAYMENT_METHODS.indexOf(b.paymentMethod),
    )
    .map(({ order: _order, ...option }) => option);
}

function ruleMatches(rule: SchemeRule, payment: PaymentQuery): boolean {
  if (rule.currencies.length > 0 && !rule.currencies.includes(payment.currency)) return false;
  if (rule.countries.length > 0 && !rule.countries.includes(payment.country)) return false;
  if (rule.minAmount != null && compareToDecimal(payment.amountMinor, payment.currency, rule.minAmount) < 0)
    return false;
  if (rule.maxAmount != null && compareToDecimal(payment.amountMinor, payment.currency, rule.maxAmount) > 0)
    return false;
  return true;
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

export function isDecimalAmount(value: string): boolean {
  return DECIMAL.test(value);
}

/**
 * Compares an amount in minor units of `currency` with a decimal bound in major units, exactly:
 * -1, 0 or 1. "10.005" compares correctly with a KWD amount and with a EUR one alike.
 */
export function compareToDecimal(amountMinor: bigint, currency: string, bound: string): number {
  const match = DECIMAL.exec(bound);
  if (!match) throw new Error(`not a decimal amount: ${bound}`);
  const [, whole, fraction = ''] = match;
  const boundScaled = BigInt(whole + fraction);
  const boundScale = fraction.length;
  const amountScale = minorUnitExponent(currency) ?? 0;
  // Both sides over the common denominator 10^(boundScale + amountScale).
  const left = amountMinor * 10n ** BigInt(boundScale);
  const right = boundScaled * 10n ** BigInt(amountScale);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Compares two decimal strings exactly: -1, 0 or 1. */
export function compareDecimals(a: string, b: string): number {
  const scaled = (value: string, scale: number) => {
    const [whole, fraction = ''] = value.split('.');
    return BigInt(whole + fraction.padEnd(scale, '0'));
  };
  const scale = Math.max(a.split('.')[1]?.length ?? 0, b.split('.')[1]?.length ?? 0);
  const [x, y] = [scaled(a, scale), scaled(b, scale)];
  return x < y ? -1 : x > y ? 1 : 0;
}
