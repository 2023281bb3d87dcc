import { Migration } from '@mikro-orm/migrations';

/**
 * An instrument the customer did not save pays one payment only (customers/instrument-store.ts):
 * the key it was first charged under is kept, and no other key may charge it. A token that can pay
 * nothing more (its instrument removed, or spent) is erased.
 */
export class Migration20261206180000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "charged_under_key" varchar(255) null;`);
    this.addSql(`alter table "payment_instrument" alter column "token_ciphertext" drop not null;`);
    this.addSql(`update "payment_instrument" set "token_ciphertext" = null where "status" = 'REMOVED';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instrument" drop column "charged_under_key";`);
    // Erased tokens cannot come back: the column stays nullable (a placeholder would stop a key rotation).
  }
}
