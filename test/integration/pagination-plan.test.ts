import { randomUUID } from 'node:crypto';
import type { FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor, pageQuery, type DateKey } from '../../api/http/pagination.js';
import { AuditEntry, PaymentInstruction, PaymentOrder, SecurityKey, Tenant } from '../../db/entities/index.js';
import { searchFilter, type InstructionSearch } from '../../orders/instruction-search.js';
import { openDatabase } from '../../db/orm.js';
import { stalledDeliveries } from '../../webhooks/dispatcher.js';
import { freshDatabase, type FreshDatabase } from '../support/fresh-database.js';

const ORDERS = 100_000;
const DELIVERIES = 100_000;

let db: FreshDatabase;
let orm: MikroORM;
const tenantId = randomUUID();
const accountId = randomUUID();
const keyTenantId = randomUUID();

beforeAll(async () => {
  db = await freshDatabase();
  orm = await openDatabase({ url: db.url, poolSize: db.poolSize, migrate: true, log: () => undefined });
  const sql = orm.em.getConnection();
  // One large tenant among others, created over a year; statuses and customers spread as in life.
  await sql.execute(
    `insert into payment_order (id, tenant_id, order_ref, customer_ref, metadata, status, projection_version, created_at, updated_at)
     select gen_random_uuid(), case when n % 10 = 0 then gen_random_uuid() else ?::uuid end, 'order-' || n, 'customer-' || (n % 5000), '{}',
            (array['ACTIVE','ACTIVE','ACTIVE','COMPLETED','CANCELLED'])[1 + n % 5], 0,
            now() - (n * interval '5 minutes'), now()
     from generate_series(1, ?) as n`,
    [tenantId, Math.round(ORDERS / 0.9)],
  );
  await sql.execute(`insert into account (id, name, created_at) values (?, 'a', now())`, [accountId]);
  await sql.execute(
    `insert into tenant (id, account_id, name, created_at, updated_at) select gen_random_uuid(), ?, 't' || n, now() - n * interval '1 minute', now() from generate_series(1, 20000) n`,
    [accountId],
  );
  await sql.execute(
    `insert into audit_entry (id, account_id, actor_key, action, target_type, target_id, details, created_at)
     select gen_random_uuid(), ?, 'k', 'x', 'y', 'z', '{}', now() - n * interval '1 minute' from generate_series(1, 20000) n`,
    [accountId],
  );
  await sql.execute(
    `insert into tenant (id, account_id, name, created_at, updated_at) values (?, ?, 'keys', now(), now())`,
    [keyTenantId, accountId],
  );
  await sql.execute(
    `insert into security_key (public_key, account_id, tenant_id, name, roles, private_key_ciphertext, created_at)
     select gen_random_uuid()::text, ?, case when n % 2 = 0 then ?::uuid end, 'k', '[]', 'x', now() - n * interval '1 minute' from generate_series(1, 40000) n`,
    [accountId, keyTenantId],
  );
  // One instruction per order, due a month after it, a fifth of them settled, spread over apps and directions.
  await sql.execute(
    `insert into payment_instruction (id, order_id, tenant_id, position, instruction_ref, direction, amount_minor, currency, country,
       open_at, due_at, metadata, status, attempts, projection_version, settled_amount_minor, settled_at, app_id, payment_method, customer_ref)
     select gen_random_uuid(), o.id, o.tenant_id, 0, 'i1', case when o.n % 7 = 0 then 'CREDIT' else 'DEBIT' end, 1000, 'EUR', 'FR',
       o.created_at, o.created_at + interval '30 days', '{}',
       (array['PENDING','OPEN','LATE','SETTLED','FAILED'])[1 + o.n % 5], 1, 1, 0,
       case when o.n % 5 = 3 then o.created_at + interval '30 days' end,
       (array['SANDBOX_CARD','SANDBOX_BANK'])[1 + o.n % 2], 'CARD', o.customer_ref
     from (select *, row_number() over () as n from payment_order) o`,
  );
  // Webhook deliveries of a year, nearly all ended; a few PENDING whose next try is due, some not started.
  const endpointId = randomUUID();
  await sql.execute(
    `insert into webhook_endpoint (id, tenant_id, url, event_types, secret_ciphertext, created_at, updated_at)
     values (?, ?, 'https://example.com/hooks', '[]', 'x', now(), now())`,
    [endpointId, keyTenantId],
  );
  await sql.execute(
    `insert into order_event (id, tenant_id, event_key, type, order_ref, occurred_at, payload, created_at)
     select gen_random_uuid(), ?, 'e' || n, 'order.created', 'order-' || n, now() - n * interval '5 minutes', '{}', now()
     from generate_series(1, ?) as n`,
    [keyTenantId, DELIVERIES],
  );
  await sql.execute(
    `insert into webhook_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, started_at, created_at, updated_at)
     select gen_random_uuid(), e.tenant_id, ?, e.id, e.type,
       case when e.n % 50 = 0 then 'PENDING' when e.n % 7 = 0 then 'FAILED' else 'SUCCEEDED' end,
       1 + e.n % 8, case when e.n % 100 = 0 then e.occurred_at + interval '1 hour' end,
       case when e.n % 200 <> 0 then e.occurred_at end, e.occurred_at, now()
     from (select *, row_number() over () as n from order_event) e`,
    [endpointId],
  );
  await sql.execute('analyze');
}, 300_000);

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

/** The plan PostgreSQL chooses for the page query the API runs, as its node types and indexes. */
async function planOf<T extends object>(
  entity: new () => T,
  where: FilterQuery<T>,
  idField: keyof T & string,
  cursor?: string,
  sortBy?: DateKey<T>,
) {
  const qb = pageQuery(orm.em.fork(), entity, where, { limit: 25, cursor }, idField, sortBy);
  return planOfSql(qb.getFormattedQuery());
}

/** The plan PostgreSQL chooses for a statement, as its node types and indexes. */
async function planOfSql(sql: string, params: unknown[] = []) {
  const [{ 'QUERY PLAN': plan }] = await orm.em.getConnection().execute(`explain (format json) ${sql}`, params);
  const nodes: { type: string; index?: string }[] = [];
  const walk = (node: Record<string, unknown>) => {
    nodes.push({ type: node['Node Type'] as string, index: node['Index Name'] as string | undefined });
    for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  walk((plan as { Plan: Record<string, unknown> }[])[0].Plan);
  return nodes;
}

const deepCursor = encodeCursor({
  at: new Date(Date.now() - 200 * 24 * 3600_000).toISOString(),
  id: randomUUID(),
});

describe(`a page of a tenant with ${ORDERS.toLocaleString('en')} orders`, () => {
  it.each([
    ['no filter', {}, 'payment_order_tenant_id_created_at_id_index'],
    ['a status', { status: 'COMPLETED' }, 'payment_order_tenant_id_status_created_at_id_index'],
    ['a customerRef', { customerRef: 'customer-42' }, 'payment_order_tenant_id_customer_ref_created_at_id_index'],
  ])(
    'with %s, first page and deep page alike, is one index range: no sort, no scan of the table',
    async (_, filter, index) => {
      for (const cursor of [undefined, deepCursor]) {
        const nodes = await planOf(PaymentOrder, { tenantId, ...filter } as FilterQuery<PaymentOrder>, 'id', cursor);
        expect(nodes.map((n) => n.type)).toEqual(['Limit', 'Index Scan']);
        expect(nodes[1].index).toBe(index);
      }
    },
  );

  it.each([
    ['tenants of an account', Tenant, { accountId }, 'id', 'tenant_account_id_created_at_id_index'],
    ['audit entries', AuditEntry, { accountId }, 'id', 'audit_entry_account_id_created_at_id_index'],
    ['account keys', SecurityKey, { accountId, tenantId: null }, 'publicKey', 'security_key_account_keys_page_index'],
    [
      'a tenant’s keys',
      SecurityKey,
      { accountId, tenantId: keyTenantId },
      'publicKey',
      'security_key_account_id_tenant_id_created_at_public_key_index',
    ],
  ] as const)('so is a page of %s', async (_, entity, where, idField, index) => {
    for (const cursor of [undefined, deepCursor]) {
      const nodes = await planOf(entity as never, where as never, idField as never, cursor);
      expect(nodes.map((n) => n.type)).toEqual(['Limit', 'Index Scan']);
      expect(nodes[1].index).toBe(index);
    }
  });

  it.each([
    ['no filter', {}, 'payment_instruction_tenant_id_due_at_id_index'],
    [
      'a due range',
      { dueFrom: '2026-01-01T00:00:00Z', dueTo: '2026-06-01T00:00:00Z' },
      'payment_instruction_tenant_id_due_at_id_index',
    ],
    ['a status', { status: 'LATE' }, 'payment_instruction_tenant_id_status_due_at_id_index'],
    [
      'a status, direction, app and currency, due this week',
      {
        status: 'LATE',
        direction: 'DEBIT',
        appId: 'SANDBOX_CARD',
        currency: 'EUR',
        dueFrom: '2026-03-02T00:00:00Z',
        dueTo: '2026-03-09T00:00:00Z',
      },
      'payment_instruction_tenant_id_status_due_at_id_index',
    ],
    ['a customerRef', { customerRef: 'customer-42' }, 'payment_instruction_tenant_id_customer_ref_due_at_id_index'],
    [
      'a settlement period',
      { settledFrom: '2026-01-01T00:00:00Z', settledTo: '2026-02-01T00:00:00Z' },
      'payment_instruction_tenant_id_settled_at_id_index',
    ],
  ] as [string, Omit<InstructionSearch, 'limit'>, string][])(
    'so is a search of instructions with %s',
    async (_, search, index) => {
      const { where, sortBy } = searchFilter(tenantId, search);
      for (const cursor of [undefined, deepCursor]) {
        const nodes = await planOf(PaymentInstruction, where, 'instructionId', cursor, sortBy);
        expect(nodes.map((n) => n.type)).toEqual(['Limit', 'Index Scan']);
        expect(nodes[1].index).toBe(index);
      }
    },
  );
});

describe(`webhook deliveries, ${DELIVERIES.toLocaleString('en')} of them`, () => {
  const dueBefore = () => new Date(Date.now() - 15 * 60_000);
  const rounds = [undefined, { due: new Date(Date.now() - 200 * 24 * 3600_000), id: randomUUID() }];

  it('are looked through for stalled ones among the PENDING alone while few are (2%): those sorted, the ended never read', async () => {
    for (const after of rounds) {
      const { sql, params } = stalledDeliveries(dueBefore(), after);
      const nodes = await planOfSql(sql, params);
      expect(nodes.map((n) => n.type)).toEqual(['Limit', 'Sort', 'Index Scan']);
      expect(nodes[2].index).toBe('webhook_delivery_pending_index');
    }
  });

  it('and a range of the stalled index at a time in a backlog (an endpoint down for days: 40% PENDING): no sort', async () => {
    const sql = orm.em.getConnection();
    await sql.execute(`update webhook_delivery set status = 'PENDING' where status <> 'PENDING' and attempts <= 3`);
    await sql.execute('analyze webhook_delivery');
    const [{ pending }] = await sql.execute<{ pending: string }[]>(
      `select count(*) as pending from webhook_delivery where status = 'PENDING'`,
    );
    expect(Number(pending)).toBeGreaterThan(DELIVERIES / 3);
    for (const after of rounds) {
      const stalled = stalledDeliveries(dueBefore(), after);
      const nodes = await planOfSql(stalled.sql, stalled.params);
      expect(nodes.map((n) => n.type)).toEqual(['Limit', 'Index Scan']);
      expect(nodes[1].index).toBe('webhook_delivery_stalled_index');
    }
  });
});
