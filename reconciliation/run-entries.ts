// A reconciliation run's payments, held in the database while it lasts (ARCHITECTURE.md,
// "Reconciliation"): a provider's 8 days of payments (38 for a requested month) can be millions, more
// than a process's heap holds (a worker's main thread has 128 MB), so the run keeps a page of them at
// a time. `reconciliation_entry` holds both sides, keyed by run, provider reference and side.
import { IsolationLevel, type MikroORM } from '@mikro-orm/postgresql';
import type { ProviderPayment } from '../apps/provider-ledger.js';
import { deleteInBatches } from '../db/delete-in-batches.js';
import type { MismatchKind } from '../db/entities/index.js';
import { comparePayments, type Mismatch, type OurPayment } from './compare.js';

export interface Period {
  from: Date;
  to: Date;
}

/**
 * What a run found, and how many payments it compared: ours, and the provider's of the period. The
 * differences recorded are the first `keep` found (compareEntries); `found` counts them all, by kind.
 */
export interface Comparison {
  mismatches: Mismatch[];
  found: Partial<Record<MismatchKind, number>>;
  /** Differences found that an earlier run told (`told`): neither kept nor in `found`. */
  toldBefore: number;
  compared: number;
}

/** A difference as `told` names it: its kind and reference. */
export function differenceKey({ kind, providerRef }: Pick<Mismatch, 'kind' | 'providerRef'>): string {
  return `${kind} ${providerRef}`;
}

/** Provider references compared at a time. */
export const COMPARE_PAGE = 1_000;
/**
 * The most differences a run records one by one (an item and an event each). A ledger that
 * disagrees with most of ours (a connector reading the wrong references makes every payment both
 * missing and extra) would otherwise be held whole until the run ends, and told in as many
 * webhooks (each endpoint a delivery of each); past this the run counts them, and its first
 * thousand, in order of reference, show what went wrong.
 */
export const MAX_RECORDED_MISMATCHES = 1_000;
/** Entries deleted by one statement: each delete stays short. */
const DELETE_BATCH = 10_000;

/** Whether the provider made a payment in the period (by its own clock, as it says). */
function madeInPeriod(payment: ProviderPayment, period: Period): boolean {
  const at = Date.parse(payment.createdAt);
  return at >= period.from.getTime() && at < period.to.getTime();
}

/**
 * A page of the provider's ledger into the run's entries, each marked with whether it was made in
 * `period` (decided here, once, for both the staging of ours and the comparison). A payment the
 * ledger lists twice counts as its last listing.
 */
export async function stageTheirs(orm: MikroORM, runId: string, period: Period, page: ProviderPayment[]) {
  const payments = [...new Map(page.map((t) => [t.providerRef, t])).values()];
  if (payments.length === 0) return;
  await orm.em.getConnection().execute(
    `insert into reconciliation_entry (run_id, side, provider_ref, direction, amount_minor, currency, status, made_at, in_period)
     select ?, 'theirs', s."providerRef", s.direction, s."amountMinor", s.currency, s.status, s."createdAt", s."inPeriod"
     from jsonb_to_recordset(?::jsonb) as s("providerRef" text, direction text, "amountMinor" text, currency text, status text, "createdAt" text, "inPeriod" boolean)
     on conflict (run_id, provider_ref, side) do update set direction = excluded.direction,
       amount_minor = excluded.amount_minor, currency = excluded.currency, status = excluded.status,
       made_at = excluded.made_at, in_period = excluded.in_period`,
    [runId, JSON.stringify(payments.map((t) => ({ ...t, inPeriod: madeInPeriod(t, period) })))],
  );
}

/** The instruction's last payment (`i.provider_ref`) as the provider holds it: its status, and what it moved. */
const LAST_PAYMENT_STATUS = `case when i.provider_ref = i.returned_ref then 'RETURNED'
    when i.returned_ref is null and i.status in ('LATE', 'FAILED') and i.returned_at is not null
      and (i.processing_at is null or i.returned_at >= i.processing_at) then 'RETURNED'
    else i.status end`;
const LAST_PAYMENT_MINOR = `case when i.provider_ref = i.returned_ref then coalesce(i.returned_payment_minor, i.amount_minor)
    else i.amount_minor end`;

/**
 * Ours into the run's entries: each of the app's payments that settled in the period, and any other
 * the ledger names for it. Staged from one snapshot (a projection committing between two of these
 * statements could otherwise leave a payment to neither), each kind in two statements, not one `or`,
 * so that each finds its rows by an index of its own.
 * - A settlement is read from its own row (`payment_settlement`), which names the app that took it
 *   and what it took: an instruction collected again after a return has a row for each payment,
 *   each in its own period and its own app's run. Its last payment stands as the instruction does
 *   now; an earlier one was taken back (an instruction is collected again only then).
 * - A payment with no settlement row naming its app is read from its instruction, by the
 *   instruction's app: one still PROCESSING or declined that the ledger names, and one settled
 *   before those rows (or by a worker of the code before them, during the deploy that brought them).
 *   An instruction is never left RETURNED (it goes LATE to be collected again, or FAILED), and a
 *   payment made since takes its `provider_ref`: the payment taken back is staged as RETURNED, as
 *   the provider holds it, by its own reference (`returned_ref`). Rows returned before that column
 *   was projected have only `returned_at`: one returned after its last PROCESSING holds that
 *   payment. A payment taken back is staged for what it was (`returned_payment_minor`): the
 *   instruction's amount may have been changed since, for the payment collected again.
 */
export async function stageOurs(orm: MikroORM, runId: string, tenantId: string, appId: string, period: Period) {
  const theirsInPeriod = `select e.provider_ref from reconciliation_entry e where e.run_id = ? and e.side = 'theirs' and e.in_period`;
  const inPeriod = (settledAt: string) => `${settledAt} >= ? and ${settledAt} < ?`;
  const noSettlementRow = (ref: string) =>
    `not exists (select 1 from payment_settlement s where s.instruction_id = i.id and s.provider_ref = ${ref} and s.app_id is not null)`;
  const settlements = (which: string) =>
    `insert into reconciliation_entry (run_id, side, provider_ref, order_ref, instruction_ref, direction, amount_minor, currency, status)
     select ?, 'ours', s.provider_ref, o.order_ref, i.instruction_ref, i.direction, s.amount_minor::text, s.currency,
       case when s.provider_ref = i.provider_ref then ${LAST_PAYMENT_STATUS} else 'RETURNED' end
     from payment_settlement s join payment_instruction i on i.id = s.instruction_id join payment_order o on o.id = i.order_id
     where s.tenant_id = ? and s.app_id = ? and s.provider_ref is not null and ${which}
     on conflict (run_id, provider_ref, side) do nothing`;
  const lastPayments = (which: string) =>
    `insert into reconciliation_entry (run_id, side, provider_ref, order_ref, instruction_ref, direction, amount_minor, currency, status)
     select ?, 'ours', i.provider_ref, o.order_ref, i.instruction_ref, i.direction, (${LAST_PAYMENT_MINOR})::text,
       i.currency, ${LAST_PAYMENT_STATUS}
     from payment_instruction i join payment_order o on o.id = i.order_id
     where i.tenant_id = ? and i.app_id = ? and i.provider_ref is not null and ${which}
       and ${noSettlementRow('i.provider_ref')}
     on conflict (run_id, provider_ref, side) do nothing`;
  await orm.em.fork().transactional(
    async (em) => {
      const inRun = [runId, tenantId, appId];
      await em.execute(settlements(inPeriod('s.settled_at')), [...inRun, period.from, period.to]);
      await em.execute(settlements(`s.provider_ref in (${theirsInPeriod})`), [...inRun, runId]);
      await em.execute(lastPayments(inPeriod('i.settled_at')), [...inRun, period.from, period.to]);
      await em.execute(lastPayments(`i.provider_ref in (${theirsInPeriod})`), [...inRun, runId]);
      await em.execute(
        `insert into reconciliation_entry (run_id, side, provider_ref, order_ref, instruction_ref, direction, amount_minor, currency, status)
         select ?, 'ours', i.returned_ref, o.order_ref, i.instruction_ref, i.direction,
           coalesce(i.returned_payment_minor, i.amount_minor)::text, i.currency, 'RETURNED'
         from payment_instruction i join payment_order o on o.id = i.order_id
         where i.tenant_id = ? and i.app_id = ? and i.returned_ref is not null
           and i.returned_ref is distinct from i.provider_ref and i.returned_ref in (${theirsInPeriod})
           and ${noSettlementRow('i.returned_ref')}
         on conflict (run_id, provider_ref, side) do nothing`,
        [...inRun, runId],
      );
      await em.execute(markShared, [...inRun, ...inRun, ...inRun, runId]);
    },
    { isolationLevel: IsolationLevel.REPEATABLE_READ },
  );
}

/**
 * Ours whose reference more than one instruction of the app holds, as its payment, a payment taken
 * back or a settlement's, marked `shared`: the entries take one row per reference, so two instructions the provider answered
 * with one reference would otherwise be one payment matched, counted as settled twice here. Only a
 * resolution is refused a reference another instruction holds; a provider's answer is not checked.
 */
const markShared = `update reconciliation_entry e set shared = true
  from (select ref from (
          select s.provider_ref as ref, s.instruction_id as id from payment_settlement s
            join reconciliation_entry x on x.run_id = ? and x.side = 'ours' and x.provider_ref = s.provider_ref
           where s.tenant_id = ? and s.app_id = ?
          union
          select i.provider_ref, i.id from payment_instruction i
            join reconciliation_entry x on x.run_id = ? and x.side = 'ours' and x.provider_ref = i.provider_ref
           where i.tenant_id = ? and i.app_id = ?
          union
          select i.returned_ref, i.id from payment_instruction i
            join reconciliation_entry x on x.run_id = ? and x.side = 'ours' and x.provider_ref = i.returned_ref
           where i.tenant_id = ? and i.app_id = ?
        ) holders group by ref having count(*) > 1) twice
  where e.run_id = ? and e.side = 'ours' and e.provider_ref = twice.ref`;

/**
 * The run's entries compared `page` provider references at a time, both sides of each together; the
 * first `keep` differences kept, all of them counted; `afterPage` called once each page is compared.
 * `told`: of a page's differences, those an earlier run told (by differenceKey), set apart before any
 * is kept, so that known ones never take the place of a new one.
 */
export async function compareEntries(
  orm: MikroORM,
  runId: string,
  {
    page = COMPARE_PAGE,
    keep = MAX_RECORDED_MISMATCHES,
    afterPage = () => Promise.resolve(),
    told,
  }: {
    page?: number;
    keep?: number;
    afterPage?: () => Promise<void>;
    told?: (differences: Mismatch[]) => Promise<Set<string>>;
  } = {},
): Promise<Comparison> {
  const connection = orm.em.getConnection();
  const mismatches: Mismatch[] = [];
  const found: Comparison['found'] = {};
  let compared = 0;
  let toldBefore = 0;
  // Three entries at least: a read always holds one whole reference.
  const limit = 2 * Math.max(1, page) + 1;
  for (let after = ''; ;) {
    const read = await connection.execute<EntryRow[]>(
      `select side, provider_ref, order_ref, instruction_ref, direction, amount_minor, currency, status, made_at, in_period, shared
       from reconciliation_entry where run_id = ? and provider_ref > ? order by provider_ref, side limit ?`,
      [runId, after, limit],
    );
    if (read.length === 0) return { mismatches, found, toldBefore, compared };
    const rows = wholeReferences(read, limit);
    const ours = rows.filter((r) => r.side === 'ours').map(ourPaymentOf);
    const theirs = rows.filter((r) => r.side === 'theirs');
    const inPeriod = new Set(theirs.filter((r) => r.in_period).map((r) => r.provider_ref));
    let differences = comparePayments(ours, theirs.map(providerPaymentOf), (t) => inPeriod.has(t.providerRef));
    if (told && differences.length > 0) {
      const known = await told(differences);
      toldBefore += differences.filter((d) => known.has(differenceKey(d))).length;
      differences = differences.filter((d) => !known.has(differenceKey(d)));
    }
    for (const { kind } of differences) found[kind] = (found[kind] ?? 0) + 1;
    mismatches.push(...differences.slice(0, Math.max(0, keep - mismatches.length)));
    compared += ours.length + inPeriod.size;
    after = rows.at(-1)!.provider_ref;
    await afterPage();
  }
}

/** The run's entries deleted, a batch at a time (an 8-day ledger is not one statement's work). */
export async function deleteEntries(orm: MikroORM, runId: string): Promise<void> {
  await deleteInBatches(orm, 'reconciliation_entry', 'run_id = ?', [runId], DELETE_BATCH);
}

/**
 * The entries of a page read in order of reference, `limit` at most, without those of its last
 * reference when the page is full: that reference may have its other side on the next page, and is
 * compared there, whole. A reference has two entries at most, so a limit of 3 or more always leaves one.
 */
export function wholeReferences<Row extends { provider_ref: string }>(read: Row[], limit: number): Row[] {
  if (read.length < limit) return read;
  const cut = read.at(-1)!.provider_ref;
  return read.filter((r) => r.provider_ref !== cut);
}

/** An entry as read back. */
interface EntryRow {
  side: 'ours' | 'theirs';
  provider_ref: string;
  order_ref: string | null;
  instruction_ref: string | null;
  direction: string;
  amount_minor: string;
  currency: string;
  status: string;
  made_at: string | null;
  in_period: boolean;
  shared: boolean;
}

function ourPaymentOf(row: EntryRow): OurPayment {
  return {
    providerRef: row.provider_ref,
    orderRef: row.order_ref!,
    instructionRef: row.instruction_ref!,
    direction: row.direction,
    amountMinor: row.amount_minor,
    currency: row.currency,
    status: row.status,
    ...(row.shared ? { shared: true } : {}),
  };
}

function providerPaymentOf(row: EntryRow): ProviderPayment {
  return {
    providerRef: row.provider_ref,
    direction: row.direction as ProviderPayment['direction'],
    amountMinor: row.amount_minor,
    currency: row.currency,
    status: row.status as ProviderPayment['status'],
    createdAt: row.made_at!,
  };
}
