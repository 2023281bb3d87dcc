import type { Readable } from 'node:stream';
import type { Client } from 'pg';
import type { EntityManager, FilterQuery } from '@mikro-orm/postgresql';
import { findPage, type Page, type PageQuery } from '../api/http/pagination.js';
import { PaymentInstruction, PaymentOrder } from '../db/entities/index.js';
import { streamRows } from '../db/row-stream.js';
import type { InstructionStatus } from '../domain/instruction-status.js';
import { formatAmount } from '../domain/money.js';

export interface InstructionSearch extends PageQuery {
  status?: InstructionStatus;
  direction?: 'DEBIT' | 'CREDIT';
  appId?: string;
  currency?: string;
  customerRef?: string;
  dueFrom?: string;
  dueTo?: string;
  settledFrom?: string;
  settledTo?: string;
}

export interface FoundInstruction {
  row: PaymentInstruction;
  orderRef: string;
}

/**
 * Instructions across the tenant's orders, latest due date first; a search by settlement date is
 * ordered by that instead. Each order is a range of one of the indexes on (tenant_id, [status |
 * customer_ref,] due_at, id) or (tenant_id, settled_at, id); the other filters are checked on the
 * rows that range reads.
 */
export async function searchInstructions(
  em: EntityManager,
  tenantId: string,
  query: InstructionSearch,
): Promise<Page<FoundInstruction>> {
  const { where, sortBy } = searchFilter(tenantId, query);
  const page = await findPage(em, PaymentInstruction, where, query, 'instructionId', sortBy);
  const orders = await em.find(
    PaymentOrder,
    { id: { $in: [...new Set(page.items.map((i) => i.order.id))] }, tenantId },
    { fields: ['id', 'orderRef'] },
  );
  const refOf = new Map(orders.map((o) => [o.id, o.orderRef]));
  return { items: page.items.map((row) => ({ row, orderRef: refOf.get(row.order.id)! })), nextCursor: page.nextCursor };
}

/** The rows a search asks for, and the date its pages are ordered by. */
export function searchFilter(
  tenantId: string,
  query: Omit<InstructionSearch, keyof PageQuery>,
): { where: FilterQuery<PaymentInstruction>; sortBy: 'dueAt' | 'settledAt' } {
  const where: FilterQuery<PaymentInstruction> = { tenantId };
  for (const field of ['status', 'direction', 'appId', 'currency', 'customerRef'] as const)
    if (query[field] !== undefined) Object.assign(where, { [field]: query[field] });
  const bySettlement = query.settledFrom !== undefined || query.settledTo !== undefined;
  if (query.dueFrom || query.dueTo) where.dueAt = range(query.dueFrom, query.dueTo);
  if (bySettlement) where.settledAt = { $ne: null, ...range(query.settledFrom, query.settledTo) };
  return { where, sortBy: bySettlement ? 'settledAt' : 'dueAt' };
}

function range(from: string | undefined, to: string | undefined): { $gte?: Date; $lt?: Date } {
  return { ...(from ? { $gte: new Date(from) } : {}), ...(to ? { $lt: new Date(to) } : {}) };
}

/**
 * One settlement as finance reads it, amounts as decimals: when it settled, what it took, under which
 * reference, app and method; then its instruction as it stands now, with its status and the totals
 * of what all its payments took, and what refunds and returns gave back.
 */
export interface SettlementRow {
  settledAt: string;
  orderRef: string;
  instructionRef: string;
  instructionId: string;
  direction: string;
  status: string;
  appId: string | null;
  paymentMethod: string | null;
  providerRef: string | null;
  customerRef: string | null;
  currency: string;
  amount: string;
  settledAmount: string;
  refundedAmount: string;
  returnedAmount: string;
  returnCode: string | null;
}

export const SETTLEMENT_COLUMNS: (keyof SettlementRow)[] = [
  'settledAt',
  'orderRef',
  'instructionRef',
  'instructionId',
  'direction',
  'status',
  'appId',
  'paymentMethod',
  'providerRef',
  'customerRef',
  'currency',
  'amount',
  'settledAmount',
  'refundedAmount',
  'returnedAmount',
  'returnCode',
];

export interface SettlementRecord {
  /** As the driver gives it: MikroORM keeps timestamps as PostgreSQL's text. */
  settled_at: string | Date;
  order_ref: string;
  instruction_ref: string;
  id: string;
  direction: string;
  status: string;
  app_id: string | null;
  payment_method: string | null;
  provider_ref: string | null;
  customer_ref: string | null;
  currency: string;
  amount_minor: string;
  settled_amount_minor: string;
  refunded_amount_minor: string;
  returned_amount_minor: string;
  return_code: string | null;
}

// What a settlement row shows of its instruction as it stands now.
const INSTRUCTION_NOW = `o.order_ref, i.instruction_ref, i.id, i.direction, i.status, i.customer_ref,
  i.settled_amount_minor::text as settled_amount_minor, i.refunded_amount_minor::text as refunded_amount_minor,
  i.returned_amount_minor::text as returned_amount_minor, i.return_code`;

// Every settlement with its row (db/entities/payment-settlement.ts), and, so that none is ever left
// out, an instruction whose last settlement has none, listed as of it: one projected by a worker of
// the code before those rows, in the deploy that brought them. The union is a subquery so that
// PostgreSQL may merge its two sides read in order from their indexes (a union ordered at its top
// level is always sorted whole); for a period holding most of a table's rows it sorts them, as it
// did the instructions before (EXPLAIN on 100,000 settlements: 0.36 s). The client's memory stays flat
// either way.
const SETTLEMENTS_IN_PERIOD = `
  select * from (
    select s.settled_at, ${INSTRUCTION_NOW}, s.app_id, s.payment_method, s.provider_ref, s.currency,
      s.amount_minor::text as amount_minor, s.id as row_id
    from payment_settlement s
    join payment_instruction i on i.id = s.instruction_id
    join payment_order o on o.id = i.order_id
    where s.tenant_id = $1 and s.settled_at >= $2 and s.settled_at < $3
    union all
    select i.settled_at, ${INSTRUCTION_NOW}, i.app_id, i.payment_method, i.provider_ref, i.currency,
      i.amount_minor::text as amount_minor, i.id as row_id
    from payment_instruction i
    join payment_order o on o.id = i.order_id
    where i.tenant_id = $1 and i.settled_at >= $2 and i.settled_at < $3
      and not exists (select 1 from payment_settlement s
        where s.instruction_id = i.id and s.settled_at = i.settled_at
          and s.tenant_id = $1 and s.settled_at >= $2 and s.settled_at < $3)
  ) settlements
  order by settled_at, row_id`;

/**
 * Runs `consume` on every settlement of the tenant in [from, to), oldest first, as a
 * stream read from a server-side cursor (pg-query-stream): memory stays the same whatever the
 * period holds, and a slow reader slows the query instead of filling the heap. The stream has a
 * connection of the pool to itself, taken here and given back exactly once, after `consume` is
 * done with it (knex's own `.stream()` gives it back twice, once while the reader may still hold
 * rows, and another request could then share it).
 */
export async function withSettlementStream(
  em: EntityManager,
  tenantId: string,
  period: { from: Date; to: Date },
  { lockWaitMs }: { lockWaitMs: number },
  consume: (rows: Readable) => Promise<void>,
): Promise<void> {
  const knex = em.getKnex();
  const bindings = [tenantId, period.from, period.to];
  const pool = knex.client as {
    acquireConnection(): Promise<Client>;
    releaseConnection(connection: unknown): Promise<void>;
  };
  const connection = await pool.acquireConnection();
  try {
    // A query stuck behind a lock (a migration, maintenance) would hold its export's slot and
    // connection for as long as the lock is held. Only the wait for a lock is bounded: a statement
    // timeout would count from the cursor's first message to its last, the client's reading included.
    await connection.query('begin read only');
    await connection.query(`set local lock_timeout = ${Math.max(1, Math.floor(lockWaitMs))}`);
    const { rows, detach } = streamRows(connection, SETTLEMENTS_IN_PERIOD, bindings, 500);
    try {
      await consume(rows);
    } finally {
      detach();
    }
    await connection.query('commit');
  } catch (err) {
    // A stream destroyed half-way (the client went away) closes its cursor first: the rollback waits
    // for that, so the connection goes back in a state fit for the next request.
    await connection.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await pool.releaseConnection(connection);
  }
}

/** Whether an export's query gave up waiting for a lock (`withSettlementStream`'s `lockWaitMs`). */
export const lockWaitedOut = (err: unknown) => (err as { code?: string }).code === '55P03';

/** A statement cut by its `statement_timeout` (query_canceled). */
export const statementTimedOut = (err: unknown) => (err as { code?: string }).code === '57014';

export function settlementRowOf(record: SettlementRecord): SettlementRow {
  const money = (minor: string) => formatAmount(BigInt(minor), record.currency);
  return {
    settledAt: new Date(record.settled_at).toISOString(),
    orderRef: record.order_ref,
    instructionRef: record.instruction_ref,
    instructionId: record.id,
    direction: record.direction,
    status: record.status,
    appId: record.app_id,
    paymentMethod: record.payment_method,
    providerRef: record.provider_ref,
    customerRef: record.customer_ref,
    currency: record.currency,
    amount: money(record.amount_minor),
    settledAmount: money(record.settled_amount_minor),
    refundedAmount: money(record.refunded_amount_minor),
    returnedAmount: money(record.returned_amount_minor),
    returnCode: record.return_code,
  };
}
