import { Migration } from '@mikro-orm/migrations';

/** The workflow projects only the instructions that changed, each idempotent by its own version. */
export class Migration20261128164843 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instruction" add column "projection_version" bigint not null default '0';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "payment_instruction" drop column "projection_version";`);
  }
}
