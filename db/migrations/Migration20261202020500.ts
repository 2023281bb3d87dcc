import { Migration } from '@mikro-orm/migrations';

/** A reconciliation run's heartbeat: a run beats at every ledger page it stages, and one that stops has stopped. */
export class Migration20261202020500 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "reconciliation_run" add column "heartbeat_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "reconciliation_run" drop column "heartbeat_at";`);
  }
}
