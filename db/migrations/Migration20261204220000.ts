import { Migration } from '@mikro-orm/migrations';

/**
 * When a try to the endpoint last failed: a failing streak whose last failure is older than the
 * longest wait between two tries had no tries in between, so the next failure starts it again
 * (webhooks/attempt-delivery.ts). Rows from before it start their streak again at their next failure.
 */
export class Migration20261204220000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "webhook_endpoint" add column "last_failed_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_endpoint" drop column "last_failed_at";`);
  }
}
