import { Migration } from '@mikro-orm/migrations';

/**
 * What the payment last returned or charged back was for (reconciliation/run-entries.ts stages it
 * with that amount, not the instruction's, which may have been changed since). Rows returned before
 * it have none, and are staged with the instruction's amount, as before.
 */
export class Migration20261206100000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instruction" add column "returned_payment_minor" bigint null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instruction" drop column "returned_payment_minor";`);
  }
}
