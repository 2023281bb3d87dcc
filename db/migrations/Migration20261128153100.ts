import { Migration } from '@mikro-orm/migrations';

/**
 * Hardening: list indexes that end in each list's page order, idempotent answers sealed under the
 * master key with a lease per request, and projection versions as bigints that rise across runs.
 */
export class Migration20261128153100 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index "audit_entry_account_id_created_at_index";`);

    this.addSql(
      `create index "audit_entry_account_id_created_at_id_index" on "audit_entry" ("account_id", "created_at", "id");`,
    );

    this.addSql(`alter table "idempotency_record" drop column "response_body";`);

    this.addSql(
      `alter table "idempotency_record" add column "lease_token" uuid null, add column "lease_expires_at" timestamptz null, add column "response_ciphertext" text null;`,
    );

    this.addSql(`drop index "payment_order_tenant_id_created_at_index";`);

    this.addSql(
      `alter table "payment_order" alter column "projection_version" type bigint using ("projection_version"::bigint);`,
    );
    this.addSql(`alter table "payment_order" alter column "projection_version" set default '0';`);
    this.addSql(
      `create index "payment_order_tenant_id_created_at_id_index" on "payment_order" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "payment_order_tenant_id_status_created_at_id_index" on "payment_order" ("tenant_id", "status", "created_at", "id");`,
    );
    this.addSql(
      `create index "payment_order_tenant_id_customer_ref_created_at_id_index" on "payment_order" ("tenant_id", "customer_ref", "created_at", "id");`,
    );

    this.addSql(`drop index "tenant_account_id_created_at_index";`);

    this.addSql(`create index "tenant_account_id_created_at_id_index" on "tenant" ("account_id", "created_at", "id");`);

    this.addSql(`drop index "security_key_account_id_tenant_id_index";`);

    this.addSql(
      `create index "security_key_account_id_tenant_id_created_at_public_key_index" on "security_key" ("account_id", "tenant_id", "created_at", "public_key");`,
    );
    this.addSql(
      `create index "security_key_account_keys_page_index" on "security_key" ("account_id", "created_at", "public_key") where "tenant_id" is null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "audit_entry_account_id_created_at_id_index";`);

    this.addSql(
      `create index "audit_entry_account_id_created_at_index" on "audit_entry" ("account_id", "created_at");`,
    );

    this.addSql(
      `alter table "idempotency_record" drop column "lease_token", drop column "lease_expires_at", drop column "response_ciphertext";`,
    );

    this.addSql(`alter table "idempotency_record" add column "response_body" jsonb null;`);

    this.addSql(`drop index "payment_order_tenant_id_created_at_id_index";`);
    this.addSql(`drop index "payment_order_tenant_id_status_created_at_id_index";`);
    this.addSql(`drop index "payment_order_tenant_id_customer_ref_created_at_id_index";`);

    this.addSql(
      `alter table "payment_order" alter column "projection_version" type int4 using ("projection_version"::int4);`,
    );
    this.addSql(`alter table "payment_order" alter column "projection_version" set default 0;`);
    this.addSql(
      `create index "payment_order_tenant_id_created_at_index" on "payment_order" ("tenant_id", "created_at");`,
    );

    this.addSql(`drop index "security_key_account_id_tenant_id_created_at_public_key_index";`);
    this.addSql(`drop index "security_key_account_keys_page_index";`);

    this.addSql(
      `create index "security_key_account_id_tenant_id_index" on "security_key" ("account_id", "tenant_id");`,
    );

    this.addSql(`drop index "tenant_account_id_created_at_id_index";`);

    this.addSql(`create index "tenant_account_id_created_at_index" on "tenant" ("account_id", "created_at");`);
  }
}
