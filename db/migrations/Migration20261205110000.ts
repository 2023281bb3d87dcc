import { Migration } from '@mikro-orm/migrations';

/**
 * Until when an ended order stays open for refunds and returns, as its workflow projects it: a
 * customer is kept while one of their orders may still collect again (customers/customer-service.ts).
 * Orders projected before it read as closed once ended, as they were treated before.
 */
export class Migration20261205110000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_order" add column "open_until" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_order" drop column "open_until";`);
  }
}
