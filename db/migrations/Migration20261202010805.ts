import { Migration } from '@mikro-orm/migrations';

/** The payments a reconciliation run compares, held while it runs instead of in the worker's memory. */
export class Migration20261202010805 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "reconciliation_entry" ("run_id" uuid not null, "provider_ref" varchar(128) not null, "side" varchar(6) not null, "direction" varchar(6) not null, "amount_minor" varchar(20) not null, "currency" varchar(3) not null, "status" varchar(16) not null, "made_at" text null, "in_period" boolean not null default false, "order_ref" varchar(50) null, "instruction_ref" varchar(50) null, constraint "reconciliation_entry_pkey" primary key ("run_id", "provider_ref", "side"));`,
    );
    this.addSql(
      `alter table "reconciliation_entry" add constraint "reconciliation_entry_run_id_foreign" foreign key ("run_id") references "reconciliation_run" ("id") on update no action on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "reconciliation_entry" cascade;`);
  }
}
