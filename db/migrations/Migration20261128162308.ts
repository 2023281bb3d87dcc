import { Migration } from '@mikro-orm/migrations';

/** Marketplace: app installations, versioned schemes, voucher groups, provider callbacks; instructions record their resolution. */
export class Migration20261128162308 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "provider_callback" ("id" uuid not null, "tenant_id" uuid not null, "app_id" varchar(64) not null, "provider_ref" varchar(128) not null, "status" varchar(16) not null, "order_ref" varchar(50) not null, "instruction_ref" varchar(50) not null, "payload" jsonb not null, "received_at" timestamptz not null, "delivered_at" timestamptz null, constraint "provider_callback_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "provider_callback_tenant_id_order_ref_index" on "provider_callback" ("tenant_id", "order_ref");`,
    );
    this.addSql(
      `alter table "provider_callback" add constraint "provider_callback_outcome_unique" unique ("tenant_id", "app_id", "provider_ref", "status");`,
    );

    this.addSql(
      `create table "scheme" ("id" uuid not null, "tenant_id" uuid not null, "kind" varchar(8) not null, "name" varchar(200) not null, "current_version" int not null, "is_default" boolean not null default false, "deleted_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "scheme_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "scheme_tenant_id_kind_created_at_id_index" on "scheme" ("tenant_id", "kind", "created_at", "id");`,
    );
    this.addSql(
      `CREATE UNIQUE INDEX scheme_one_default_per_kind ON public.scheme USING btree (tenant_id, kind) WHERE (is_default AND (deleted_at IS NULL));`,
    );

    this.addSql(
      `create table "scheme_version" ("scheme_id" uuid not null, "version" int not null, "tenant_id" uuid not null, "rules" jsonb not null, "created_at" timestamptz not null, constraint "scheme_version_pkey" primary key ("scheme_id", "version"));`,
    );

    this.addSql(
      `create table "app_installation" ("id" uuid not null, "tenant_id" uuid not null, "app_id" varchar(64) not null, "configuration" jsonb not null, "secrets_ciphertext" text null, "secrets_set" jsonb not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "app_installation_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "app_installation_tenant_id_created_at_id_index" on "app_installation" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `alter table "app_installation" add constraint "app_installation_tenant_app_unique" unique ("tenant_id", "app_id");`,
    );

    this.addSql(
      `create table "voucher_group" ("id" uuid not null, "tenant_id" uuid not null, "name" varchar(200) not null, "vouchers" jsonb not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "voucher_group_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "voucher_group_tenant_id_created_at_id_index" on "voucher_group" ("tenant_id", "created_at", "id");`,
    );

    this.addSql(
      `alter table "scheme" add constraint "scheme_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "scheme_version" add constraint "scheme_version_scheme_id_foreign" foreign key ("scheme_id") references "scheme" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "app_installation" add constraint "app_installation_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "voucher_group" add constraint "voucher_group_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "payment_instruction" add column "scheme_id" uuid null, add column "scheme_version" int null, add column "resolved_options" jsonb null, add column "payment_method" varchar(16) null, add column "voucher_code" varchar(64) null;`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_app_id_status_index" on "payment_instruction" ("tenant_id", "app_id", "status");`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_scheme_id_status_index" on "payment_instruction" ("tenant_id", "scheme_id", "status");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "scheme_version" drop constraint "scheme_version_scheme_id_foreign";`);

    this.addSql(`drop table if exists "provider_callback" cascade;`);

    this.addSql(`drop table if exists "scheme" cascade;`);

    this.addSql(`drop table if exists "scheme_version" cascade;`);

    this.addSql(`drop table if exists "app_installation" cascade;`);

    this.addSql(`drop table if exists "voucher_group" cascade;`);

    this.addSql(`drop index "payment_instruction_tenant_id_app_id_status_index";`);
    this.addSql(`drop index "payment_instruction_tenant_id_scheme_id_status_index";`);
    this.addSql(
      `alter table "payment_instruction" drop column "scheme_id", drop column "scheme_version", drop column "resolved_options", drop column "payment_method", drop column "voucher_code";`,
    );
  }
}
