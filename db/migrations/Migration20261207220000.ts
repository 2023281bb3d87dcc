import { Migration } from '@mikro-orm/migrations';

/**
 * Whether another of our instructions holds an entry's provider reference too (ours only): one
 * payment counted for two instructions is a difference of its own. A column with a constant default:
 * no rewrite of the table (PostgreSQL 11 and later), which holds only runs under way anyway.
 */
export class Migration20261207220000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "reconciliation_entry" add column "shared" boolean not null default false;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "reconciliation_entry" drop column "shared";`);
  }
}
