import { Migration } from '@mikro-orm/migrations';

/**
 * The reference of an instruction's payment last returned or charged back, kept when a payment made
 * since takes `provider_ref` (reconciliation/run-entries.ts stages both); and payments found by their
 * provider's reference without reading every instruction of the tenant. Rows returned before it get
 * the reference at their order's next projection.
 */
export class Migration20261205010000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instruction" add column "returned_ref" varchar(128) null;`);
    this.addSql(
      `create index "payment_instruction_tenant_id_app_id_provider_ref_index" on "payment_instruction" ("tenant_id", "app_id", "provider_ref");`,
    );
    this.addSql(
      `create index payment_instruction_returned_ref_index on payment_instruction (tenant_id, app_id, returned_ref) where returned_ref is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_instruction_returned_ref_index";`);
    this.addSql(`drop index "payment_instruction_tenant_id_app_id_provider_ref_index";`);
    this.addSql(`alter table "payment_instruction" drop column "returned_ref";`);
  }
}
