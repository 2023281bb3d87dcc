import type { EntityManager } from '@mikro-orm/postgresql';
import { findVoucher, type Voucher } from '../domain/voucher-catalog.js';
import { Scheme, SchemeVersion, VoucherGroup } from '../db/entities/index.js';
import type { Direction } from '../domain/instruction.js';
import { parseAmount } from '../domain/money.js';
import { evaluateScheme, type PaymentMethod, type ResolvedOption, type SchemeKind } from '../domain/scheme.js';
import { voucherAccepts } from '../domain/voucher.js';
import { Refusal, type FieldError } from '../domain/refusal.js';

export interface InstructionToResolve {
  direction: Direction;
  amount: string;
  currency: string;
  country: string;
  schemeId?: string;
  paymentMethod?: PaymentMethod;
  financialInstrumentId?: string;
}

export interface Resolution {
  schemeId: string;
  schemeVersion: number;
  /** Every option the scheme offered, best first. */
  options: ResolvedOption[];
  /** The one paid with: the method asked for, or else the best. */
  chosen: ResolvedOption;
}

export const KIND_OF_DIRECTION: Record<Direction, SchemeKind> = { DEBIT: 'collect', CREDIT: 'payout' };

/** Where errors point: `instructions[2].schemeId` for an order's instructions, `schemeId` for a body that is one instruction. */
export type ErrorPaths = 'instructions' | 'body';

/**
 * Resolves instructions against their schemes' current versions (ARCHITECTURE.md, "Schemes"): the
 * scheme named, or the tenant's default of the direction's kind. An instruction the scheme offers no
 * option for, or one whose method or voucher it does not offer, is refused as invalid, naming it;
 * all at once.
 */
export async function resolveInstructions(
  em: EntityManager,
  tenantId: string,
  instructions: InstructionToResolve[],
  paths: ErrorPaths = 'instructions',
  schemesOf: SchemeReader = readCurrentSchemes,
): Promise<Resolution[]> {
  const at = (index: number, field?: string) => {
    const base = paths === 'instructions' ? `instructions[${index}]` : '';
    return field ? (base ? `${base}.${field}` : field) : base || 'body';
  };
  const schemes = await schemesOf(em, tenantId);
  const byId = new Map(schemes.map((s) => [s.id, s]));
  const defaults = new Map(schemes.filter((s) => s.isDefault).map((s) => [s.kind, s]));
  const rulesOf = new Map(schemes.map((s) => [s.id, s.rules]));

  const errors: FieldError[] = [];
  const resolutions: (Resolution | undefined)[] = [];
  const voucherChecks: {
    index: number;
    option: ResolvedOption;
    voucherId: string;
    amountMinor: bigint;
    currency: string;
    country: string;
  }[] = [];
  instructions.forEach((instruction, index) => {
    const kind = KIND_OF_DIRECTION[instruction.direction];
    const scheme = instruction.schemeId ? byId.get(instruction.schemeId) : defaults.get(kind);
    if (!scheme) {
      errors.push(
        instruction.schemeId
          ? { path: at(index, 'schemeId'), code: 'scheme_not_found', message: `no scheme ${instruction.schemeId}` }
          : {
              path: at(index, 'schemeId'),
              code: 'scheme_required',
              message: `name a ${kind} scheme, or make one the tenant's default`,
            },
      );
      return resolutions.push(undefined);
    }
    if (scheme.kind !== kind) {
      errors.push({
        path: at(index, 'schemeId'),
        code: 'scheme_wrong_kind',
        message: `a ${instruction.direction} instruction needs a ${kind} scheme`,
      });
      return resolutions.push(undefined);
    }
    const amountMinor = parseAmount(instruction.amount, instruction.currency);
    const { options } = evaluateScheme(rulesOf.get(scheme.id) ?? [], {
      amountMinor,
      currency: instruction.currency,
      country: instruction.country,
    });
    if (options.length === 0) {
      errors.push({
        path: at(index),
        code: 'no_payment_option',
        message: `scheme "${scheme.name}" offers no option for ${instruction.amount} ${instruction.currency} in ${instruction.country}`,
      });
      return resolutions.push(undefined);
    }
    const chosen = instruction.paymentMethod
      ? options.find((o) => o.paymentMethod === instruction.paymentMethod)
      : options[0];
    if (!chosen) {
      errors.push({
        path: at(index, 'paymentMethod'),
        code: 'method_not_offered',
        message: `scheme "${scheme.name}" does not offer ${instruction.paymentMethod} for this payment`,
      });
      return resolutions.push(undefined);
    }
    if (chosen.paymentMethod === 'VOUCHER' && instruction.financialInstrumentId) {
      voucherChecks.push({
        index,
        option: chosen,
        voucherId: instruction.financialInstrumentId,
        amountMinor,
        currency: instruction.currency,
        country: instruction.country,
      });
    }
    resolutions.push({ schemeId: scheme.id, schemeVersion: scheme.currentVersion, options, chosen });
  });

  // A voucher payout names its voucher as the instrument: one the scheme's groups offer, for this amount.
  for (const check of voucherChecks) {
    const offered = await vouchersOffered(em, tenantId, check.option, check);
    if (!offered.some((v) => v.voucherId === check.voucherId)) {
      errors.push({
        path: at(check.index, 'financialInstrumentId'),
        code: 'voucher_not_offered',
        message: `voucher ${check.voucherId} is not offered by the scheme's voucher groups for this amount, currency and country`,
      });
    }
  }
  if (errors.length > 0) throw Refusal.invalid(errors);
  return resolutions as Resolution[];
}

/** A scheme as resolution reads it: with the rules of its current version. */
export type CurrentScheme = Pick<Scheme, 'id' | 'kind' | 'name' | 'currentVersion' | 'isDefault'> &
  Pick<SchemeVersion, 'rules'>;

/** Reads a tenant's current schemes (OrderService keeps them while nothing changes them). */
export type SchemeReader = (em: EntityManager, tenantId: string) => Promise<CurrentScheme[]>;

/** The tenant's schemes not deleted, each with its current version's rules: one query. */
export const readCurrentSchemes: SchemeReader = (em, tenantId) => {
  const query = em
    .getKnex()
    .select('s.id', 's.kind', 's.name', 's.current_version as currentVersion', 's.is_default as isDefault', 'v.rules')
    .from('scheme as s')
    .join('scheme_version as v', (on) => on.on('v.scheme_id', 's.id').andOn('v.version', 's.current_version'))
    .where('s.tenant_id', tenantId)
    .whereNull('s.deleted_at');
  return em.getConnection().execute<CurrentScheme[]>(query, [], 'all', em.getTransactionContext());
};

/** The vouchers a VOUCHER option offers for a payment: enabled in one of its groups, and issued for this amount, currency and country. */
export async function vouchersOffered(
  em: EntityManager,
  tenantId: string,
  option: ResolvedOption,
  payment: { amountMinor: bigint; currency: string; country: string },
): Promise<Voucher[]> {
  if (option.voucherGroupIds.length === 0) return [];
  const groups = await em.find(VoucherGroup, { tenantId, id: { $in: option.voucherGroupIds } });
  const enabled = new Set(groups.flatMap((g) => g.vouchers.filter((v) => v.enabled).map((v) => v.voucherId)));
  return [...enabled]
    .map(findVoucher)
    .filter(
      (voucher): voucher is Voucher =>
        voucher !== undefined && voucherAccepts(voucher, payment.amountMinor, payment.currency, payment.country),
    );
}
