import { Migration } from '@mikro-orm/migrations';

/**
 * Stored instruments: a provider's token (sealed) and what may be shown of it, saved for a customer
 * or used once; and the stored instrument an instruction pays with.
 */
export class Migration20261130141356 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "payment_instrument" ("id" uuid not null, "tenant_id" uuid not null, "customer_id" uuid null, "app_id" varchar(64) not null, "payment_method" varchar(16) not null, "token_ciphertext" text not null, "token_hint" varchar(8) not null, "display" jsonb not null, "status" varchar(16) not null default 'ACTIVE', "saved" boolean not null default false, "mandate_ref" varchar(64) null, "mandate_status" varchar(16) null, "mandate_signed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "payment_instrument_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "payment_instrument_tenant_id_customer_id_created_at_id_index" on "payment_instrument" ("tenant_id", "customer_id", "created_at", "id");`,
    );
    this.addSql(
      `alter table "payment_instrument" add constraint "payment_instrument_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "payment_instrument" add constraint "payment_instrument_customer_id_foreign" foreign key ("customer_id") references "customer" ("id") on update no action on delete cascade;`,
    );
    this.addSql(`alter table "payment_instruction" add column "instrument_id" uuid null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "payment_instrument" cascade;`);
    this.addSql(`alter table "payment_instruction" drop column "instrument_id";`);
  }
}
