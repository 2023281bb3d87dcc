import { z } from 'zod';
import { isProviderRef, MalformedAnswerError } from './provider-answer.js';

/** Statuses a provider's ledger gives its payments (the sandbox's words; HTTP_CONNECTOR's contract is the same). */
export const LEDGER_STATUSES = ['PENDING', 'SETTLED', 'DECLINED', 'RETURNED', 'CHARGED_BACK'] as const;

/** One payment as the provider's own records have it: what reconciliation compares with ours. */
export interface ProviderPayment {
  providerRef: string;
  direction: 'DEBIT' | 'CREDIT';
  amountMinor: string;
  currency: string;
  status: (typeof LEDGER_STATUSES)[number];
  createdAt: string;
}

/** A page of a provider's ledger, and where the next one starts. */
export interface LedgerPage {
  items: ProviderPayment[];
  nextCursor: string | null;
}

const LedgerPageSchema = z.object({
  items: z
    .array(
      z.object({
        providerRef: z.string().refine((ref) => isProviderRef(ref), 'not a reference fit to keep'),
        direction: z.enum(['DEBIT', 'CREDIT']),
        amountMinor: z.string().regex(/^\d{1,18}$/),
        currency: z.string().regex(/^[A-Z]{3}$/),
        status: z.enum(LEDGER_STATUSES),
        createdAt: z.iso.datetime({ offset: true }),
      }),
    )
    .max(1000),
  nextCursor: z.string().min(1).max(200).nullable(),
});

/** A ledger page as answered, checked like any provider answer before anything of it is believed. */
export function checkedLedgerPage(body: unknown, who: string): LedgerPage {
  const parsed = LedgerPageSchema.safeParse(body);
  if (!parsed.success)
    throw new MalformedAnswerError(`${who} answered a malformed ledger page: ${parsed.error.issues[0]?.message}`);
  return {
    // Only the declared fields: anything else a provider adds stays with it.
    items: parsed.data.items.map(({ providerRef, direction, amountMinor, currency, status, createdAt }) => ({
      providerRef,
      direction,
      amountMinor,
      currency,
      status,
      createdAt,
    })),
    nextCursor: parsed.data.nextCursor,
  };
}
