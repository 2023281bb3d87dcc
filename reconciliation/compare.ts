import type { ProviderPayment } from '../apps/provider-ledger.js';
import type { MismatchKind } from '../db/entities/index.js';

/** A payment as our read model has it: an instruction with the provider's reference of its payment. */
export interface OurPayment {
  providerRef: string;
  orderRef: string;
  instructionRef: string;
  direction: string;
  amountMinor: string;
  currency: string;
  status: string;
  /** Another of our instructions holds this reference too. */
  shared?: boolean;
}

export interface Mismatch {
  kind: MismatchKind;
  providerRef: string;
  ours?: OurPayment;
  theirs?: ProviderPayment;
}

/** Where the money of a payment stands, in words both sides share. `moving`: not known yet on one side. */
type MoneyState = 'settled' | 'reversed' | 'moving' | 'none';

const OURS: Record<string, MoneyState> = { SETTLED: 'settled', RETURNED: 'reversed', PROCESSING: 'moving' };
const THEIRS: Record<ProviderPayment['status'], MoneyState> = {
  SETTLED: 'settled',
  RETURNED: 'reversed',
  CHARGED_BACK: 'reversed',
  PENDING: 'moving',
  DECLINED: 'none',
};

/**
 * The differences between our payments and the provider's, matched by the provider's reference:
 * - `missing`: we hold a payment settled that the provider has no record of;
 * - `extra`: the provider settled a payment we have no instruction for;
 * - `amount`, `currency`: both have it, for different money;
 * - `status`: both have it, but the money stands otherwise (settled here, returned there…). A
 *   payment still moving on either side (ours PROCESSING, theirs PENDING) is no difference yet.
 * - `shared`: more than one of our instructions holds the reference, so one payment may count as
 *   paid for each (told besides any other difference of the payment).
 * `ours` are the payments settled in the period and any other with a reference the ledger names for
 * the period; `theirs`, the ledger's payments of the period and of the days before it (a bank debit
 * made on Monday settles on Wednesday), of which only the period's own can be `extra`.
 */
export function comparePayments(
  ours: OurPayment[],
  theirs: ProviderPayment[],
  /** Which of theirs are the period's own (the others, made before it, are there to be matched only). */
  inPeriod: (payment: ProviderPayment) => boolean = () => true,
): Mismatch[] {
  const theirsByRef = new Map(theirs.map((t) => [t.providerRef, t]));
  const oursByRef = new Map(ours.map((o) => [o.providerRef, o]));
  const mismatches: Mismatch[] = [];
  for (const our of oursByRef.values()) {
    const their = theirsByRef.get(our.providerRef);
    if (our.shared)
      mismatches.push({ kind: 'shared', providerRef: our.providerRef, ours: our, ...(their ? { theirs: their } : {}) });
    const state = OURS[our.status] ?? 'none';
    if (!their) {
      if (state === 'settled' || state === 'reversed')
        mismatches.push({ kind: 'missing', providerRef: our.providerRef, ours: our });
      continue;
    }
    const pair = { providerRef: our.providerRef, ours: our, theirs: their };
    // Money paid out where we collected it (or the other way) is money otherwise: an amount difference.
    if (our.currency !== their.currency) mismatches.push({ kind: 'currency', ...pair });
    else if (BigInt(our.amountMinor) !== BigInt(their.amountMinor) || our.direction !== their.direction)
      mismatches.push({ kind: 'amount', ...pair });
    const theirState = THEIRS[their.status];
    if (state !== theirState && state !== 'moving' && theirState !== 'moving')
      mismatches.push({ kind: 'status', ...pair });
  }
  for (const their of theirsByRef.values()) {
    // A declined or returned payment moved nothing for good: only money kept is owed an instruction.
    if (!oursByRef.has(their.providerRef) && THEIRS[their.status] === 'settled' && inPeriod(their))
      mismatches.push({ kind: 'extra', providerRef: their.providerRef, theirs: their });
  }
  return mismatches;
}
