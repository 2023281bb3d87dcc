import { Migration } from '@mikro-orm/migrations';

/**
 * Reconciliation stages our side from the settlement rows (reconciliation/run-entries.ts): the
 * payments a provider's ledger names are found by their reference.
 */
export class Migration20261206150000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "payment_settlement_tenant_id_app_id_provider_ref_index" on "payment_settlement" ("tenant_id", "app_id", "provider_ref");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_settlement_tenant_id_app_id_provider_ref_index";`);
  }
}
