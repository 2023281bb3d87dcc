import { Migration } from '@mikro-orm/migrations';

/**
 * What the API reads on every order it takes tells every listening process when it changes
 * (db/row-changes.ts): security keys (by public key), tenants (by id) and schemes (by tenant). The
 * API caches them and drops them on this notice, in whichever process changed them. The trigger is
 * generic: its first argument names the column that keys the row, its second (if any) the table it
 * is told as.
 */
export class Migration20261201060000 extends Migration {
  override async up(): Promise<void> {
    // A row's key before and after: both are told when an update moved it (none of ours does today).
    this.addSql(`create or replace function "notify_row_change"() returns trigger language plpgsql as $$
declare
  told_as text := coalesce(TG_ARGV[1], TG_TABLE_NAME);
  before text := case when TG_OP <> 'INSERT' then to_jsonb(OLD) ->> TG_ARGV[0] end;
  after text := case when TG_OP <> 'DELETE' then to_jsonb(NEW) ->> TG_ARGV[0] end;
begin
  if before is not null then
    perform pg_notify('row_changes', told_as || ':' || before);
  end if;
  if after is not null and after is distinct from before then
    perform pg_notify('row_changes', told_as || ':' || after);
  end if;
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
    // The routes publish a version and move the scheme to it in one go; a version's rules edited by
    // hand are a scheme change too. Told as the scheme table's, which caches listen to.
    this.addSql(
      `create trigger "scheme_version_notify_change" after update or delete on "scheme_version" for each row execute function "notify_row_change"('tenant_id', 'scheme');`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "scheme_version_notify_change" on "scheme_version";`);
    this.addSql(`drop trigger if exists "scheme_notify_change" on "scheme";`);
    this.addSql(`drop trigger if exists "tenant_notify_change" on "tenant";`);
    this.addSql(`drop trigger if exists "security_key_notify_change" on "security_key";`);
    this.addSql(`drop function if exists "notify_row_change"();`);
  }
}
