import { Migration } from '@mikro-orm/migrations';

/**
 * A card or account entered on the payment page remembers the instruction it was entered for, so
 * that one no payment took (the page's update failed, not refused) can be found and its token erased
 * (`sweepEnteredTokens`, orders/one-time-instruments.ts). Rows from before have none: the
 * next migration clears those.
 */
export class Migration20261206230000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "payment_instrument" add column "entered_for_instruction_id" uuid null;`);
    this.addSql(
      `create index "payment_instrument_unsaved_token_index" on "payment_instrument" ("created_at") where not "saved" and "token_ciphertext" is not null and "entered_for_instruction_id" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_instrument_unsaved_token_index";`);
    this.addSql(`alter table "payment_instrument" drop column "entered_for_instruction_id";`);
  }
}
