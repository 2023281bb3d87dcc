import { Migration } from '@mikro-orm/migrations';

/**
 * Business days: when each instruction is charged (null on instructions taken before: their due
 * date), and the tenant's rule for due dates on weekends and public holidays (null: FOLLOWING).
 */
export class Migration20261130140513 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instruction" add column "charge_at" timestamptz null;`);
    this.addSql(`alter table "tenant" add column "business_day_rule" varchar(24) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instruction" drop column "charge_at";`);
    this.addSql(`alter table "tenant" drop column "business_day_rule";`);
  }
}
