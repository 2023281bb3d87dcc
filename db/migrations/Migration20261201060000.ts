import { Migration } from '@mikro-orm/migrations';

/**
 * Security keys tell every listening process when they are deleted (db/row-changes.ts): the API
 * caches the key each call names, and drops it on this notice, in whichever process deleted it.
 * The trigger is generic: its argument names the column that keys the row.
 */
export class Migration20261201060000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "notify_row_change"() returns trigger language plpgsql as $$
begin
  perform pg_notify('row_changes', TG_TABLE_NAME || ':' || (to_jsonb(OLD) ->> TG_ARGV[0]));
  return null;
end;
$$;`);
    this.addSql(
      `create trigger "security_key_notify_change" after update or delete on "security_key" for each row execute function "notify_row_change"('public_key');`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "security_key_notify_change" on "security_key";`);
    this.addSql(`drop function if exists "notify_row_change"();`);
  }
}
