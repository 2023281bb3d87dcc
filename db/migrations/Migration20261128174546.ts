import { Migration } from '@mikro-orm/migrations';

/** Webhooks: endpoints with sealed secrets, the event log, deliveries and their attempts. */
export class Migration20261128174546 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "order_event" ("id" uuid not null, "tenant_id" uuid not null, "event_key" varchar(200) not null, "type" varchar(40) not null, "order_ref" varchar(50) not null, "instruction_ref" varchar(50) null, "occurred_at" timestamptz not null, "payload" text not null, "created_at" timestamptz not null, constraint "order_event_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "order_event_tenant_id_created_at_id_index" on "order_event" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "order_event_tenant_id_type_created_at_id_index" on "order_event" ("tenant_id", "type", "created_at", "id");`,
    );
    this.addSql(
      `create index "order_event_tenant_id_order_ref_created_at_id_index" on "order_event" ("tenant_id", "order_ref", "created_at", "id");`,
    );
    this.addSql(
      `alter table "order_event" add constraint "order_event_tenant_key_unique" unique ("tenant_id", "event_key");`,
    );

    this.addSql(
      `create table "webhook_endpoint" ("id" uuid not null, "tenant_id" uuid not null, "url" varchar(2000) not null, "event_types" jsonb not null, "enabled" boolean not null default true, "description" varchar(500) null, "secret_ciphertext" text not null, "previous_secret_ciphertext" text null, "previous_secret_expires_at" timestamptz null, "disabled_reason" varchar(500) null, "failing_since" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "webhook_endpoint_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "webhook_endpoint_tenant_id_created_at_id_index" on "webhook_endpoint" ("tenant_id", "created_at", "id");`,
    );

    this.addSql(
      `create table "webhook_delivery" ("id" uuid not null, "tenant_id" uuid not null, "endpoint_id" uuid not null, "event_id" uuid not null, "event_type" varchar(40) not null, "status" varchar(16) not null default 'PENDING', "attempts" int not null default 0, "replay_of" uuid null, "next_attempt_at" timestamptz null, "started_at" timestamptz null, "finished_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "webhook_delivery_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "webhook_delivery_tenant_id_created_at_id_index" on "webhook_delivery" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "webhook_delivery_endpoint_id_status_created_at_index" on "webhook_delivery" ("endpoint_id", "status", "created_at");`,
    );
    this.addSql(
      `CREATE INDEX webhook_delivery_not_started_index ON public.webhook_delivery USING btree (created_at) WHERE (started_at IS NULL);`,
    );

    this.addSql(
      `create table "webhook_attempt" ("id" uuid not null, "delivery_id" uuid not null, "tenant_id" uuid not null, "attempt" int not null, "attempted_at" timestamptz not null, "status_code" int null, "latency_ms" int not null, "error" varchar(500) null, "next_attempt_at" timestamptz null, constraint "webhook_attempt_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "webhook_attempt" add constraint "webhook_attempt_delivery_attempt_unique" unique ("delivery_id", "attempt");`,
    );

    this.addSql(
      `alter table "webhook_endpoint" add constraint "webhook_endpoint_tenant_id_foreign" foreign key ("tenant_id") references "tenant" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "webhook_delivery" add constraint "webhook_delivery_endpoint_id_foreign" foreign key ("endpoint_id") references "webhook_endpoint" ("id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "webhook_delivery" add constraint "webhook_delivery_event_id_foreign" foreign key ("event_id") references "order_event" ("id") on update no action on delete cascade;`,
    );

    this.addSql(
      `alter table "webhook_attempt" add constraint "webhook_attempt_delivery_id_foreign" foreign key ("delivery_id") references "webhook_delivery" ("id") on update no action on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_delivery" drop constraint "webhook_delivery_event_id_foreign";`);

    this.addSql(`alter table "webhook_delivery" drop constraint "webhook_delivery_endpoint_id_foreign";`);

    this.addSql(`alter table "webhook_attempt" drop constraint "webhook_attempt_delivery_id_foreign";`);

    this.addSql(`drop table if exists "order_event" cascade;`);

    this.addSql(`drop table if exists "webhook_endpoint" cascade;`);

    this.addSql(`drop table if exists "webhook_delivery" cascade;`);

    this.addSql(`drop table if exists "webhook_attempt" cascade;`);
  }
}
