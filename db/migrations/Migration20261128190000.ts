import { Migration } from '@mikro-orm/migrations';

/**
 * Request counters shared by every API process (rate-limiter-flexible's layout: it inserts the
 * three columns by position; `expire` is in epoch milliseconds).
 */
export class Migration20261128190000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "rate_limit_counter" ("key" varchar(255) not null, "points" integer not null default 0, "expire" bigint null, constraint "rate_limit_counter_pkey" primary key ("key"));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "rate_limit_counter";`);
  }
}
