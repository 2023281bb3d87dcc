import { Migration } from '@mikro-orm/migrations';

/**
 * Which value of its app's callback secret an instrument was made under: a digest of it, salted with
 * the instrument's id and sealed under the master key (domain/retired-secrets.ts `madeUnderDigest`),
 * so that a mandate's end told under a replaced merchant key is for the instruments made at that
 * account, whenever we stored them. Nullable, no default: no rewrite of the table; rows of before keep
 * none (their time of storing stands in).
 */
export class Migration20261208030000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "made_under_ciphertext" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instrument" drop column "made_under_ciphertext";`);
  }
}
