import { Migration } from '@mikro-orm/migrations';

/**
 * The deliveries still PENDING by when their next try was due: the dispatcher looks for those whose
 * run has stopped (webhooks/dispatcher.ts `reviveStalled`) without reading every pending one.
 */
export class Migration20261203100000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index webhook_delivery_stalled_index on webhook_delivery (coalesce(next_attempt_at, started_at), id) where status = 'PENDING' and started_at is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "webhook_delivery_stalled_index";`);
  }
}
