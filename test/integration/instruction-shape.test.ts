import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PaymentInstruction, PaymentOrder } from '../../db/entities/index.js';
import { openDatabase } from '../../db/orm.js';
import { INSTRUCTION_COLUMNS, INSTRUCTION_FIELDS, type Instruction } from '../../domain/instruction.js';
import { instructionFromRow, rowOf, upsertInstructions } from '../../orders/read-model.js';
import { lane } from '../support/lanes.js';

let orm: MikroORM;

beforeAll(async () => {
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: inject('databasePoolSize') });
});

afterAll(async () => {
  await orm?.close();
});

/** An instruction with every field set, each to a value of its own. */
function everyField(): Instruction {
  return {
    instructionId: randomUUID(),
    position: 3,
    instructionRef: 'premium-4',
    direction: 'DEBIT',
    amountMinor: '9007199254740991',
    currency: 'EUR',
    country: 'FR',
    openAt: '2027-01-01T00:00:00.000Z',
    dueAt: '2027-01-31T00:00:00.000Z',
    customerRef: 'customer-9',
    financialInstrumentId: 'card_ok',
    schemeId: randomUUID(),
    schemeVersion: 7,
    options: [{ appId: 'SANDBOX_CARD', paymentMethod: 'CARD', priority: 1, voucherGroupIds: [] }],
    appId: 'SANDBOX_CARD',
    paymentMethod: 'CARD',
    status: 'LATE',
    attempts: 2,
    providerRef: 'pay_1',
    voucherCode: 'V-1',
    failureCode: 'insufficient_funds',
    settledAmountMinor: '9007199254740990',
    refundedAmountMinor: '1200',
    returnedAmountMinor: '3400',
    returnCode: 'refer_to_payer',
    nextActionAt: '2027-02-01T00:00:00.000Z',
    openedAt: '2027-01-01T00:00:01.000Z',
    processingAt: '2027-01-31T00:00:01.000Z',
    lateAt: '2027-01-31T00:00:02.000Z',
    settledAt: '2027-02-02T00:00:00.000Z',
    failedAt: '2027-02-03T00:00:00.000Z',
    cancelledAt: '2027-02-04T00:00:00.000Z',
    returnedAt: '2027-02-05T00:00:00.000Z',
  };
}

describe("the instruction's one declared shape", () => {
  it('names every column of payment_instruction, with its type and whether it may be null', async () => {
    const rows: { column_name: string; data_type: string; is_nullable: 'YES' | 'NO' }[] = await orm.em
      .getConnection()
      .execute(
        `select column_name, data_type, is_nullable from information_schema.columns where table_name = 'payment_instruction'`,
      );
    const table = new Map(rows.map((r) => [r.column_name, r]));
    const typeNames = {
      uuid: 'uuid',
      integer: 'integer',
      text: 'character varying',
      bigint: 'bigint',
      timestamptz: 'timestamp with time zone',
      jsonb: 'jsonb',
    };
    for (const field of INSTRUCTION_FIELDS) {
      const { column, type } = INSTRUCTION_COLUMNS[field];
      const nullable = 'nullable' in INSTRUCTION_COLUMNS[field];
      expect(table.get(column), field).toMatchObject({
        data_type: typeNames[type],
        is_nullable: nullable ? 'YES' : 'NO',
      });
      table.delete(column);
    }
    // What ties the row to its order and tenant, and the projection's own bookkeeping.
    expect([...table.keys()].sort()).toEqual(['metadata', 'order_id', 'projection_version', 'tenant_id']);
  });

  it('comes back from its row as it went in, with every field set and with every optional one absent', async () => {
    const em = orm.em.fork();
    const order = em.create(PaymentOrder, {
      id: randomUUID(),
      tenantId: randomUUID(),
      orderRef: `shape-${randomUUID()}`,
      metadata: {},
      status: 'ACTIVE',
      projectionVersion: '0',
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    const full = everyField();
    const { customerRef, financialInstrumentId, nextActionAt, ...sparse } = {
      ...everyField(),
      position: 4,
      instructionRef: 'premium-5',
      providerRef: undefined,
      voucherCode: undefined,
      failureCode: undefined,
      openedAt: undefined,
      processingAt: undefined,
      lateAt: undefined,
      settledAt: undefined,
      failedAt: undefined,
      cancelledAt: undefined,
    };
    expect([customerRef, financialInstrumentId, nextActionAt]).not.toContain(undefined);
    for (const instruction of [full, sparse]) {
      em.create(PaymentInstruction, {
        ...rowOf(instruction),
        order,
        tenantId: order.tenantId,
        metadata: {},
        projectionVersion: '0',
      });
    }
    await em.flush();
    const stored = await orm.em.fork().find(PaymentInstruction, { order: order.id }, { orderBy: { position: 'asc' } });
    expect(stored.map(instructionFromRow)).toEqual([full, JSON.parse(JSON.stringify(sparse))]);
  });

  it('is written by the projection in every column it declares, and never over a newer version', async () => {
    const em = orm.em.fork();
    const order = em.create(PaymentOrder, {
      id: randomUUID(),
      tenantId: randomUUID(),
      orderRef: `shape-${randomUUID()}`,
      metadata: {},
      status: 'ACTIVE',
      projectionVersion: '0',
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    await em.flush();
    const first = everyField();
    const later = {
      ...first,
      status: 'SETTLED' as const,
      attempts: 3,
      failureCode: undefined,
      settledAt: '2027-03-01T00:00:00.000Z',
    };
    const project = (version: string, instruction: Instruction, metadata?: Record<string, string>) =>
      upsertInstructions(em, {
        orderId: order.id,
        tenantId: order.tenantId,
        version,
        instructions: [{ ...instruction, metadata }],
      });
    await project('10', first, { plan: 'gold' });
    await project('30', later);
    await project('20', { ...first, attempts: 9 });
    const [row] = await orm.em.fork().find(PaymentInstruction, { order: order.id });
    expect(instructionFromRow(row)).toEqual(JSON.parse(JSON.stringify(later)));
    expect(row.metadata).toEqual({ plan: 'gold' });
    expect(row.projectionVersion).toBe('30');

    // One value longer than its column (a provider's, say) is cut to fit: it never stops the projection.
    await project('40', {
      ...later,
      providerRef: 'r'.repeat(300),
      failureCode: 'c'.repeat(100),
      voucherCode: 'v'.repeat(70),
    });
    const [cut] = await orm.em.fork().find(PaymentInstruction, { order: order.id });
    expect([cut.providerRef, cut.failureCode, cut.voucherCode]).toEqual([
      'r'.repeat(128),
      'c'.repeat(64),
      'v'.repeat(64),
    ]);
    expect(cut.projectionVersion).toBe('40');
  });
});
