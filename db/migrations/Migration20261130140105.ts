import { Migration } from '@mikro-orm/migrations';

/** Customers: a tenant's own customerRef once per tenant, gone with the tenant. */
export class Migration20261130140105 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "customer" ("id" uuid not null, "tenant_id" uuid not null, "customer_ref" varchar(50) not null, "name" varchar(200) null, "email" varchar(254) null, "locale" varchar(35) null, "metadata" jsonb not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "customer_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "customer_tenant_id_created_at_id_index" on "customer" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `alter table "customer" add constraint "customer_tenant_ref_unique" unique ("tenant_id", "customer_ref");`,
    );
    this.addSql(
      `alter table "customer" add constraint "customer_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "customer" cascade;`);
  }
}
