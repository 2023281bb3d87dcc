import { Migration } from '@mikro-orm/migrations';

/**
 * A hash of the request that created an order (orders/order-plans.ts `orderRequestHash`): a batch
 * sending an orderRef again is told whether it is the same order. Null for orders from before.
 */
export class Migration20261202170000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_order" add column "request_hash" varchar(64) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_order" drop column "request_hash";`);
  }
}
