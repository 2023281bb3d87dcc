import { Migration } from '@mikro-orm/migrations';

/**
 * Money after settlement: refunds, what settled, was refunded and was taken back per instruction,
 * the return code; the tenant's returns policy and arrears expiry (kept on each order as taken); an
 * order status long enough for COMPLETED_WITH_FAILURES; events that belong to no order.
 */
export class Migration20261130120000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "payment_refund" ("id" uuid not null, "tenant_id" uuid not null, "order_id" uuid not null, "instruction_id" uuid not null, "instruction_ref" varchar(50) not null, "number" int not null, "amount_minor" bigint not null, "currency" varchar(3) not null, "reason" varchar(200) null, "payment_ref" varchar(128) not null, "status" varchar(16) not null default 'PENDING', "provider_ref" varchar(128) null, "failure_code" varchar(64) null, "created_at" timestamptz not null, "succeeded_at" timestamptz null, "failed_at" timestamptz null, "projection_version" bigint not null default '0', constraint "payment_refund_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "payment_refund_tenant_id_instruction_id_created_at_index" on "payment_refund" ("tenant_id", "instruction_id", "created_at");`,
    );
    this.addSql(
      `create index "payment_refund_tenant_id_provider_ref_index" on "payment_refund" ("tenant_id", "provider_ref");`,
    );
    this.addSql(
      `alter table "payment_refund" add constraint "payment_refund_instruction_number_unique" unique ("instruction_id", "number");`,
    );
    this.addSql(
      `alter table "payment_instruction" add column "settled_amount_minor" bigint not null default 0, add column "refunded_amount_minor" bigint not null default 0, add column "returned_amount_minor" bigint not null default 0, add column "return_code" varchar(64) null, add column "returned_at" timestamptz null;`,
    );
    // Instructions that settled before this counted what they settled nowhere: once, their amount.
    this.addSql(`update "payment_instruction" set "settled_amount_minor" = "amount_minor" where "status" = 'SETTLED';`);
    this.addSql(`alter table "payment_order" alter column "status" type varchar(32) using ("status"::varchar(32));`);
    this.addSql(
      `alter table "payment_order" add column "returns_policy" varchar(16) null, add column "arrears_expiry_days" int null;`,
    );
    this.addSql(
      `alter table "tenant" add column "returns_policy" varchar(16) null, add column "arrears_expiry_days" int null;`,
    );
    this.addSql(`alter table "order_event" alter column "order_ref" drop not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "payment_refund";`);
    this.addSql(
      `alter table "payment_instruction" drop column "settled_amount_minor", drop column "refunded_amount_minor", drop column "returned_amount_minor", drop column "return_code", drop column "returned_at";`,
    );
    this.addSql(`alter table "payment_order" drop column "returns_policy", drop column "arrears_expiry_days";`);
    this.addSql(`alter table "tenant" drop column "returns_policy", drop column "arrears_expiry_days";`);
  }
}
