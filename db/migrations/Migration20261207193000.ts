import { Migration } from '@mikro-orm/migrations';

/**
 * Reconciliation items by tenant and reference: a recheck of a day asks which of its differences an
 * earlier run of the tenant's app already told.
 */
export class Migration20261207193000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "reconciliation_item_tenant_id_provider_ref_index" on "reconciliation_item" ("tenant_id", "provider_ref");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "reconciliation_item_tenant_id_provider_ref_index";`);
  }
}
