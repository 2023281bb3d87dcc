import { Migration } from '@mikro-orm/migrations';

/**
 * Where each payment's and refund's idempotency key was first sent (db/entities/provider-key-scope.ts),
 * so that a later call under the key never goes to a provider that never saw it.
 */
export class Migration20261207190000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "provider_key_scope" ("idempotency_key" text not null, "tenant_id" uuid not null, "app_id" varchar(64) not null, "scope_digest" varchar(64) not null, "used_at" timestamptz not null, constraint "provider_key_scope_pkey" primary key ("idempotency_key"));`,
    );
    this.addSql(`create index "provider_key_scope_used_at_index" on "provider_key_scope" ("used_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "provider_key_scope" cascade;`);
  }
}
