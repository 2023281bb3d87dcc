import { Migration } from '@mikro-orm/migrations';

/** The orphan-order reconciler looks for orders without a workflow every few seconds: keep that off a table scan. */
export class Migration20261128004500 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "payment_order_workflow_not_started_index" on "payment_order" ("created_at") where "workflow_started_at" is null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "payment_order_workflow_not_started_index";`);
  }
}
