import { Migration } from '@mikro-orm/migrations';

/**
 * A card or account entered on the payment page remembers the instruction it was entered for, so
 * that one no payment took (the page's update failed, not refused) can be found and its token erased
 * (`sweepUnnamedEnteredTokens`, orders/one-time-instruments.ts). Rows from before have none: those
 * already a day old that no instruction names are erased here, once, by the sweep's own reasoning
 * (only the page's payment that took one ever names it); younger ones are kept.
 */
export class Migration20261206230000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "entered_for_instruction_id" uuid null;`);
    this.addSql(
      `create index "payment_instrument_unsaved_token_index" on "payment_instrument" ("created_at") where not "saved" and "token_ciphertext" is not null and "entered_for_instruction_id" is not null;`,
    );
    this.addSql(`update "payment_instrument" p set "token_ciphertext" = null, "updated_at" = now()
      where not p."saved" and p."token_ciphertext" is not null and p."created_at" < now() - interval '1 day'
        and not exists (select 1 from "payment_instruction" i where i."instrument_id" = p."id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_instrument_unsaved_token_index";`);
    this.addSql(`alter table "payment_instrument" drop column "entered_for_instruction_id";`);
  }
}
