import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/orm.js';
import { freshDatabase, type FreshDatabase } from '../support/fresh-database.js';

let db: FreshDatabase;
let orm: MikroORM;

beforeAll(async () => {
  db = await freshDatabase();
  orm = await openDatabase({ url: db.url, poolSize: db.poolSize });
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const tenantId = randomUUID();
const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 9, minute));

async function instruction(orderRef: string, row: Record<string, unknown>): Promise<string> {
  const sql = orm.em.getConnection();
  const orderId = randomUUID();
  const id = randomUUID();
  await sql.execute(
    `insert into payment_order (id, tenant_id, order_ref, metadata, status, created_at, updated_at)
     values (?, ?, ?, '{}', 'COMPLETED', now(), now())`,
    [orderId, tenantId, orderRef],
  );
  await sql.execute(
    `insert into payment_instruction (id, order_id, tenant_id, position, instruction_ref, direction, amount_minor, currency,
       country, open_at, due_at, metadata, status, settled_amount_minor, settled_at, provider_ref, app_id, payment_method)
     values (?, ?, ?, 0, 'i1', 'DEBIT', ?, ?, 'FR', now(), now(), '{}', 'SETTLED', ?, ?, ?, 'SANDBOX_CARD', 'CARD')`,
    [id, orderId, tenantId, row.amountMinor, row.currency, row.settledAmountMinor, row.settledAt, row.providerRef],
  );
  return id;
}

/** An `instruction.settled` event as the projection recorded it, its body cut to what the backfill reads. */
async function settledEvent(orderRef: string, n: number, occurredAt: Date, told: Record<string, string>) {
  const payload = {
    type: 'instruction.settled',
    data: { instruction: { instructionRef: 'i1', appId: 'SANDBOX_CARD', paymentMethod: 'CARD', ...told } },
  };
  await orm.em.getConnection().execute(
    `insert into order_event (id, tenant_id, event_key, type, order_ref, instruction_ref, occurred_at, payload, created_at)
       values (?, ?, ?, 'instruction.settled', ?, 'i1', ?, ?, now())`,
    [randomUUID(), tenantId, `${orderRef}:i1:${n}:instruction.settled`, orderRef, occurredAt, JSON.stringify(payload)],
  );
}

describe('the settlements of instructions settled before they had rows of their own', () => {
  it('are taken from the events told of them, each with what it took; one with no event, from its instruction', async () => {
    const migrator = orm.getMigrator();
    await migrator.up({ to: 'Migration20261206100000' });
    // Charged back, changed to 6.00 and collected again: two settlements.
    const twice = await instruction('twice', {
      amountMinor: 600,
      currency: 'EUR',
      settledAmountMinor: 1600,
      settledAt: at(20),
      providerRef: 'pay_2',
    });
    await settledEvent('twice', 2, at(10), { amount: '10.00', currency: 'EUR', providerRef: 'pay_1' });
    await settledEvent('twice', 6, at(20), { amount: '6.00', currency: 'EUR', providerRef: 'pay_2' });
    // A currency of no decimals: its amount's digits are its minor units too.
    const yen = await instruction('yen', {
      amountMinor: 1500,
      currency: 'JPY',
      settledAmountMinor: 1500,
      settledAt: at(30),
      providerRef: 'pay_3',
    });
    await settledEvent('yen', 2, at(30), { amount: '1500', currency: 'JPY', providerRef: 'pay_3' });
    const untold = await instruction('untold', {
      amountMinor: 700,
      currency: 'EUR',
      settledAmountMinor: 700,
      settledAt: at(40),
      providerRef: 'pay_4',
    });

    await migrator.up();

    const rows = await orm.em.getConnection().execute(
      `select instruction_id, to_json(settled_at) #>> '{}' as settled_at, amount_minor::text as amount, currency, provider_ref, app_id, payment_method
         from payment_settlement where tenant_id = ? order by settled_at`,
      [tenantId],
    );
    const settlement = (
      instructionId: string,
      minute: number,
      amount: string,
      currency: string,
      providerRef: string,
    ) => ({
      instruction_id: instructionId,
      settled_at: at(minute).toISOString().replace('.000Z', '+00:00'),
      amount,
      currency,
      provider_ref: providerRef,
      app_id: 'SANDBOX_CARD',
      payment_method: 'CARD',
    });
    expect(rows).toEqual([
      settlement(twice, 10, '1000', 'EUR', 'pay_1'),
      settlement(twice, 20, '600', 'EUR', 'pay_2'),
      settlement(yen, 30, '1500', 'JPY', 'pay_3'),
      settlement(untold, 40, '700', 'EUR', 'pay_4'),
    ]);
  });
});
