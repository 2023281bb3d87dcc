import { Migration } from '@mikro-orm/migrations';

/** Reconciliation runs and the differences they found. */
export class Migration20261130171044 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "reconciliation_run" ("id" uuid not null, "tenant_id" uuid not null, "app_id" varchar(64) not null, "period_from" timestamptz not null, "period_to" timestamptz not null, "trigger" varchar(16) not null, "schedule_key" varchar(100) null, "status" varchar(16) not null default 'RUNNING', "compared" int not null default 0, "mismatches" int not null default 0, "failure" varchar(500) null, "finished_at" timestamptz null, "created_at" timestamptz not null, constraint "reconciliation_run_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "reconciliation_run_tenant_id_created_at_id_index" on "reconciliation_run" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `alter table "reconciliation_run" add constraint "reconciliation_run_schedule_unique" unique ("tenant_id", "schedule_key");`,
    );

    this.addSql(
      `create table "reconciliation_item" ("id" uuid not null, "run_id" uuid not null, "tenant_id" uuid not null, "kind" varchar(16) not null, "provider_ref" varchar(128) not null, "order_ref" varchar(50) null, "instruction_ref" varchar(50) null, "ours" jsonb null, "theirs" jsonb null, "created_at" timestamptz not null, constraint "reconciliation_item_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "reconciliation_item_tenant_id_run_id_created_at_id_index" on "reconciliation_item" ("tenant_id", "run_id", "created_at", "id");`,
    );

    this.addSql(
      `alter table "reconciliation_run" add constraint "reconciliation_run_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "reconciliation_item" add constraint "reconciliation_item_run_id_foreign" foreign key ("run_id") references "reconciliation_run" ("id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "reconciliation_item" add constraint "reconciliation_item_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "reconciliation_item" drop constraint "reconciliation_item_run_id_foreign";`);

    this.addSql(`drop table if exists "reconciliation_run" cascade;`);

    this.addSql(`drop table if exists "reconciliation_item" cascade;`);
  }
}
