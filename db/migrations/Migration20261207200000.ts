import { Migration } from '@mikro-orm/migrations';

/**
 * When an installation's key scope last changed (a connector's URL, a sandbox merchant's key): the
 * scheduled reconciliation runs no day before it, whose payments are in another ledger. A nullable
 * column without a default: no rewrite of the table.
 */
export class Migration20261207200000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_installation" add column "key_scope_changed_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "app_installation" drop column "key_scope_changed_at";`);
  }
}
