import { Migration } from '@mikro-orm/migrations';

/** Indexes of instruction search, the settlement export and the due-soon gauges. */
export class Migration20261130164027 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index "payment_instruction_tenant_id_status_index";`);

    this.addSql(
      `create index "payment_instruction_tenant_id_due_at_id_index" on "payment_instruction" ("tenant_id", "due_at", "id");`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_status_due_at_id_index" on "payment_instruction" ("tenant_id", "status", "due_at", "id");`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_customer_ref_due_at_id_index" on "payment_instruction" ("tenant_id", "customer_ref", "due_at", "id");`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_settled_at_id_index" on "payment_instruction" ("tenant_id", "settled_at", "id");`,
    );
    this.addSql(
      `CREATE INDEX webhook_delivery_pending_index ON public.webhook_delivery USING btree (created_at) WHERE ((status)::text = 'PENDING'::text);`,
    );
    this.addSql(
      `CREATE INDEX payment_instruction_unpaid_index ON public.payment_instruction USING btree (status, COALESCE(charge_at, due_at)) WHERE ((status)::text = ANY ((ARRAY['PENDING'::character varying, 'OPEN'::character varying, 'LATE'::character varying])::text[]));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_instruction_tenant_id_due_at_id_index";`);
    this.addSql(`drop index "payment_instruction_tenant_id_status_due_at_id_index";`);
    this.addSql(`drop index "payment_instruction_tenant_id_customer_ref_due_at_id_index";`);
    this.addSql(`drop index "payment_instruction_tenant_id_settled_at_id_index";`);
    this.addSql(`drop index "payment_instruction_unpaid_index";`);
    this.addSql(`drop index "webhook_delivery_pending_index";`);

    this.addSql(
      `create index "payment_instruction_tenant_id_status_index" on "payment_instruction" ("tenant_id", "status");`,
    );
  }
}
