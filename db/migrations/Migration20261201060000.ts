import { Migration } from '@mikro-orm/migrations';

/**
 * What the API reads on every order it takes tells every listening process when it changes
 * (db/row-changes.ts): security keys (by public key), tenants (by id) and schemes (by tenant). The
 * API caches them and drops them on this notice, in whichever process changed them. The trigger is
 * generic: its argument names the column that keys the row.
 */
export class Migration20261201060000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "notify_row_change"() returns trigger language plpgsql as $$
begin
  perform pg_notify('row_changes', TG_TABLE_NAME || ':' ||
    (case when TG_OP = 'INSERT' then to_jsonb(NEW) else to_jsonb(OLD) end ->> TG_ARGV[0]));
  return null;
end;
$$;`);
    this.addSql(
      `create trigger "security_key_notify_change" after update or delete on "security_key" for each row execute function "notify_row_change"('public_key');`,
    );
    this.addSql(
      `create trigger "tenant_notify_change" after update or delete on "tenant" for each row execute function "notify_row_change"('id');`,
    );
    this.addSql(
      `create trigger "scheme_notify_change" after insert or update or delete on "scheme" for each row execute function "notify_row_change"('tenant_id');`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "scheme_notify_change" on "scheme";`);
    this.addSql(`drop trigger if exists "tenant_notify_change" on "tenant";`);
    this.addSql(`drop trigger if exists "security_key_notify_change" on "security_key";`);
    this.addSql(`drop function if exists "notify_row_change"();`);
  }
}
