import { Migration } from '@mikro-orm/migrations';

/** A mandate's callback finds the instruments holding its mandate by name (orders/http/provider-callbacks.ts). */
export class Migration20261202120000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "payment_instrument_app_id_mandate_ref_index" on "payment_instrument" ("app_id", "mandate_ref");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_instrument_app_id_mandate_ref_index";`);
  }
}
