import { Migration } from '@mikro-orm/migrations';

/**
 * Where an instrument was made: a digest of its app's key scope as it was (domain/key-scope.ts,
 * salted with the instrument's id), so that a mandate's end told under a replaced merchant key is for
 * the instruments made at that account, whenever we stored them. Nullable, no default: no rewrite of
 * the table; rows of before keep none (their time of storing stands in).
 */
export class Migration20261208030000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "key_scope_digest" varchar(64) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instrument" drop column "key_scope_digest";`);
  }
}
