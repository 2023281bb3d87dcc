import { Migration } from '@mikro-orm/migrations';

/**
 * A refund keeps the app that took the payment it refunds (domain/refund.ts): its callback is matched
 * against it. Null for refunds from before, which go through their instruction's app.
 */
export class Migration20261202160000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_refund" add column "app_id" varchar(64) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_refund" drop column "app_id";`);
  }
}
