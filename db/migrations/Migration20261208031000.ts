import { Migration } from '@mikro-orm/migrations';

/**
 * Provider results stored but not handed on, by when they came (orders/provider-results.ts
 * `deliverStored`): a partial index, holding a row only until its order's workflow has it.
 */
export class Migration20261208031000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "provider_callback_undelivered_index" on "provider_callback" ("received_at") where "delivered_at" is null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "provider_callback_undelivered_index";`);
  }
}
