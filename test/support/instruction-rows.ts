import type { MikroORM } from '@mikro-orm/postgresql';

export interface InstructionRows {
  tenantId: string;
  /** Names the rows: orders `{prefix}{n}`, for n from 1 to count. */
  prefix: string;
  count: number;
  status: string;
  /** SQL of the due date, in terms of n. */
  dueAt: string;
  /** SQL of the settlement date, in terms of n (settled rows). */
  settledAt?: string;
  customerRef?: string;
  appId?: string;
}

/**
 * Orders of one instruction each, written straight into the read model by one statement each: for
 * reads at a scale the API would take minutes to build. Their workflows count as started, so the
 * orphan reconciler leaves them alone; deleting the orders removes them (their settlements stay, read
 * only with their instructions).
 */
/** A version-4-shaped UUID from text (what the API's schemas accept), the same for the same text. */
const uuidOf = (text: string) => `overlay(overlay(md5(${text}) placing '4' from 13) placing '8' from 17)::uuid`;

export async function insertInstructionRows(orm: MikroORM, rows: InstructionRows): Promise<void> {
  const sql = orm.em.getConnection();
  const { tenantId, prefix, count } = rows;
  await sql.execute(
    `insert into payment_order (id, tenant_id, order_ref, customer_ref, metadata, status, projection_version, workflow_started_at, created_at, updated_at)
     select ${uuidOf('?::text || n')}, ?, ?::text || n, ?, '{}', 'ACTIVE', 1, now(), now(), now()
     from generate_series(1, ?) n`,
    [`${tenantId}${prefix}`, tenantId, prefix, rows.customerRef ?? null, count],
  );
  await sql.execute(
    `insert into payment_instruction (id, order_id, tenant_id, position, instruction_ref, direction, amount_minor, currency, country,
       open_at, due_at, metadata, status, attempts, projection_version, settled_amount_minor, settled_at, provider_ref,
       app_id, payment_method, customer_ref)
     select ${uuidOf("'i' || ?::text || n")}, ${uuidOf('?::text || n')}, ?, 0, 'premium', 'DEBIT', 1000 + n, 'EUR', 'FR',
       due - interval '1 day', due, '{}', ?, 1, 1, case when settled is null then 0 else 1000 + n end, settled,
       case when settled is null then null else 'pay_' || n end, ?, 'CARD', ?
     from (select n, ${rows.dueAt} as due, ${rows.settledAt ?? 'null::timestamptz'} as settled from generate_series(1, ?) n) s`,
    [
      `${tenantId}${prefix}`,
      `${tenantId}${prefix}`,
      tenantId,
      rows.status,
      rows.appId ?? 'SANDBOX_CARD',
      rows.customerRef ?? null,
      count,
    ],
  );
  // Each settled row's settlement, as its projection records it.
  await sql.execute(
    `insert into payment_settlement (id, tenant_id, event_key, order_id, instruction_id, settled_at, amount_minor, currency,
       provider_ref, app_id, payment_method)
     select gen_random_uuid(), i.tenant_id, 'bulk:' || i.id, i.order_id, i.id, i.settled_at, i.amount_minor, i.currency,
       i.provider_ref, i.app_id, i.payment_method
     from payment_instruction i join payment_order o on o.id = i.order_id
     where i.tenant_id = ? and o.order_ref like ? and i.settled_at is not null
     on conflict on constraint payment_settlement_tenant_event_key_unique do nothing`,
    [tenantId, `${prefix.replace(/[\\%_]/g, '\\$&')}%`],
  );
}
