import { Migration } from '@mikro-orm/migrations';

/** Revoked payment links: per instruction, the moment before which its links are refused. */
export class Migration20261130090000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "payment_link_revocation" ("instruction_id" uuid not null, "tenant_id" uuid not null, "revoked_at" timestamptz not null, constraint "payment_link_revocation_pkey" primary key ("instruction_id"));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "payment_link_revocation";`);
  }
}
