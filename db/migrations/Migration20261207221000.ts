import { Migration } from '@mikro-orm/migrations';

/**
 * The callback secrets a tenant replaced, sealed as one JSON list (domain/retired-secrets.ts): they
 * verify the callbacks of payments made before, for their reversal window. Nullable, no default: no
 * rewrite of the table.
 */
export class Migration20261207221000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_installation" add column "retired_secrets_ciphertext" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "app_installation" drop column "retired_secrets_ciphertext";`);
  }
}
