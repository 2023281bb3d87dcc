import { Migration } from '@mikro-orm/migrations';

export class Migration20261127235912 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "account" ("id" uuid not null, "name" varchar(200) not null, "created_at" timestamptz not null, constraint "account_pkey" primary key ("id"));`,
    );

    this.addSql(
      `create table "audit_entry" ("id" uuid not null, "account_id" uuid not null, "tenant_id" uuid null, "actor_key" varchar(64) not null, "action" varchar(64) not null, "target_type" varchar(32) not null, "target_id" varchar(100) not null, "details" jsonb not null, "created_at" timestamptz not null, constraint "audit_entry_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "audit_entry_account_id_created_at_index" on "audit_entry" ("account_id", "created_at");`,
    );

    this.addSql(
      `create table "security_key" ("public_key" varchar(64) not null, "account_id" uuid not null, "tenant_id" uuid null, "name" varchar(200) not null, "roles" jsonb not null, "private_key_ciphertext" text not null, "created_by" varchar(64) null, "created_at" timestamptz not null, constraint "security_key_pkey" primary key ("public_key"));`,
    );
    this.addSql(
      `create index "security_key_account_id_tenant_id_index" on "security_key" ("account_id", "tenant_id");`,
    );

    this.addSql(
      `create table "tenant" ("id" uuid not null, "account_id" uuid not null, "name" varchar(200) not null, "time_zone" varchar(64) null, "dunning_retry_delays_days" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "tenant_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "tenant_account_id_created_at_index" on "tenant" ("account_id", "created_at");`);

    this.addSql(
      `create table "used_nonce" ("public_key" varchar(64) not null, "nonce" varchar(128) not null, "expires_at" timestamptz not null, constraint "used_nonce_pkey" primary key ("public_key", "nonce"));`,
    );
    this.addSql(`create index "used_nonce_expires_at_index" on "used_nonce" ("expires_at");`);

    this.addSql(`alter table "payment_order" add column "dunning_delays_ms" jsonb null;`);

    this.addSql(
      `alter table "tenant" add constraint "tenant_account_id_foreign" foreign key ("account_id") references "account" ("id") on delete cascade deferrable initially deferred;`,
    );
    this.addSql(
      `alter table "security_key" add constraint "security_key_account_id_foreign" foreign key ("account_id") references "account" ("id") on delete cascade deferrable initially deferred;`,
    );
    this.addSql(
      `alter table "security_key" add constraint "security_key_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on delete cascade deferrable initially deferred;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "account" cascade;`);

    this.addSql(`drop table if exists "audit_entry" cascade;`);

    this.addSql(`drop table if exists "security_key" cascade;`);

    this.addSql(`drop table if exists "tenant" cascade;`);

    this.addSql(`drop table if exists "used_nonce" cascade;`);

    this.addSql(`alter table "payment_order" drop column "dunning_delays_ms";`);
  }
}
