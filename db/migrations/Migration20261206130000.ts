import { Migration } from '@mikro-orm/migrations';

/**
 * Every settlement on a row of its own (db/entities/payment-settlement.ts), for the settlement
 * export. Filled from what was told: each `instruction.settled` event already recorded is a
 * settlement, with the amount, reference, app and method its body gave (an amount as the API writes
 * it, exactly the currency's decimals, so its digits are its minor units). A settled instruction
 * with no such event (none is known to exist) gets one row as of its last settlement, as the export
 * listed it before.
 */
export class Migration20261206130000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "payment_settlement" ("id" uuid not null, "tenant_id" uuid not null, "event_key" varchar(200) not null, "order_id" uuid not null, "instruction_id" uuid not null, "settled_at" timestamptz not null, "amount_minor" bigint not null, "currency" varchar(3) not null, "provider_ref" varchar(128) null, "app_id" varchar(64) null, "payment_method" varchar(16) null, constraint "payment_settlement_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "payment_settlement_tenant_id_settled_at_id_index" on "payment_settlement" ("tenant_id", "settled_at", "id");`,
    );
    this.addSql(
      `alter table "payment_settlement" add constraint "payment_settlement_tenant_event_key_unique" unique ("tenant_id", "event_key");`,
    );
    this.addSql(`
      insert into payment_settlement (id, tenant_id, event_key, order_id, instruction_id, settled_at, amount_minor,
        currency, provider_ref, app_id, payment_method)
      select gen_random_uuid(), e.tenant_id, e.event_key, i.order_id, i.id, e.occurred_at,
        replace(told.body ->> 'amount', '.', '')::bigint, i.currency, left(told.body ->> 'providerRef', 128),
        told.body ->> 'appId', told.body ->> 'paymentMethod'
      from order_event e
      cross join lateral (select e.payload::jsonb -> 'data' -> 'instruction' as body) told
      join payment_order o on o.tenant_id = e.tenant_id and o.order_ref = e.order_ref
      join payment_instruction i on i.order_id = o.id and i.tenant_id = e.tenant_id
        and i.instruction_ref = e.instruction_ref
      where e.type = 'instruction.settled'`);
    this.addSql(`
      insert into payment_settlement (id, tenant_id, event_key, order_id, instruction_id, settled_at, amount_minor,
        currency, provider_ref, app_id, payment_method)
      select gen_random_uuid(), i.tenant_id, 'settled-before:' || i.id, i.order_id, i.id, i.settled_at, i.amount_minor,
        i.currency, i.provider_ref, i.app_id, i.payment_method
      from payment_instruction i
      where i.settled_at is not null
        and not exists (select 1 from payment_settlement s where s.instruction_id = i.id)`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "payment_settlement" cascade;`);
  }
}
