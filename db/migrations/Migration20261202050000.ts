import { Migration } from '@mikro-orm/migrations';

/** How many of a run's differences it kept as items: the first MAX_RECORDED_MISMATCHES; every run before kept them all. */
export class Migration20261202050000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "reconciliation_run" add column "recorded" int not null default 0;`);
    this.addSql(`update "reconciliation_run" set "recorded" = "mismatches";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "reconciliation_run" drop column "recorded";`);
  }
}
