import { Migration } from '@mikro-orm/migrations';

export class Migration20261127234232 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "idempotency_record" ("id" uuid not null, "scope" varchar(64) not null, "key" varchar(255) not null, "method" varchar(8) not null, "path" varchar(500) not null, "request_hash" varchar(64) not null, "response_status" int null, "response_body" jsonb null, "created_at" timestamptz not null, "expires_at" timestamptz not null, constraint "idempotency_record_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "idempotency_record_expires_at_index" on "idempotency_record" ("expires_at");`);
    this.addSql(
      `alter table "idempotency_record" add constraint "idempotency_record_scope_key_unique" unique ("scope", "key");`,
    );

    this.addSql(
      `create table "payment_order" ("id" uuid not null, "tenant_id" uuid not null, "order_ref" varchar(50) not null, "customer_ref" varchar(50) null, "metadata" jsonb not null, "status" varchar(16) not null default 'ACTIVE', "projection_version" int not null default 0, "workflow_started_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "payment_order_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "payment_order_tenant_id_created_at_index" on "payment_order" ("tenant_id", "created_at");`,
    );
    this.addSql(
      `alter table "payment_order" add constraint "payment_order_tenant_order_ref_unique" unique ("tenant_id", "order_ref");`,
    );

    this.addSql(
      `create table "payment_instruction" ("id" uuid not null, "order_id" uuid not null, "tenant_id" uuid not null, "position" int not null, "instruction_ref" varchar(50) not null, "direction" varchar(6) not null, "amount_minor" bigint not null, "currency" varchar(3) not null, "country" varchar(2) not null, "open_at" timestamptz not null, "due_at" timestamptz not null, "customer_ref" varchar(50) null, "financial_instrument_id" varchar(100) null, "metadata" jsonb not null, "status" varchar(16) not null default 'PENDING', "attempts" int not null default 0, "app_id" varchar(64) null, "provider_ref" varchar(128) null, "failure_code" varchar(64) null, "next_action_at" timestamptz null, "opened_at" timestamptz null, "processing_at" timestamptz null, "late_at" timestamptz null, "settled_at" timestamptz null, "failed_at" timestamptz null, "cancelled_at" timestamptz null, constraint "payment_instruction_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "payment_instruction_tenant_id_status_index" on "payment_instruction" ("tenant_id", "status");`,
    );
    this.addSql(
      `alter table "payment_instruction" add constraint "payment_instruction_order_ref_unique" unique ("order_id", "instruction_ref");`,
    );

    this.addSql(
      `alter table "payment_instruction" add constraint "payment_instruction_order_id_foreign" foreign key ("order_id") references "payment_order" ("id") on update cascade on delete cascade;`,
    );
  }
}
