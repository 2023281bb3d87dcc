import { Migration } from '@mikro-orm/migrations';

/**
 * An orphaned order is claimed by the worker starting it (`OrphanOrderReconciler`), so that several
 * workers start each orphan once between them, and one that failed to start waits its backoff
 * whichever worker looks next. A nullable column without a default: no rewrite of the table.
 */
export class Migration20261207100000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_order" add column "start_claimed_until" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_order" drop column "start_claimed_until";`);
  }
}
