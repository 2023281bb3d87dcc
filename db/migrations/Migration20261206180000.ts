import { Migration } from '@mikro-orm/migrations';

/**
 * An instrument the customer did not save pays one payment only (customers/instrument-store.ts):
 * the key it was first charged under is kept, and no other key may charge it.
 */
export class Migration20261206180000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "charged_under_key" varchar(255) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instrument" drop column "charged_under_key";`);
  }
}
