import { Migration } from '@mikro-orm/migrations';

/**
 * Tokens of unsaved instruments entered before they remembered their instruction, never swept: those
 * a day old that no instruction names are erased once, by the sweep's reasoning (only the page's
 * payment that took one ever names it, and a payment it took is named within seconds). Younger
 * ones, and named ones, are left to the projection's rules.
 */
export class Migration20261206230100 extends Migration {
  override async up(): Promise<void> {
    await this.execute(
      `update payment_instrument p set token_ciphertext = null, updated_at = now()
        where not p.saved and p.token_ciphertext is not null and p.entered_for_instruction_id is null
          and p.created_at < now() - interval '1 day'
          and not exists (select 1 from payment_instruction i where i.instrument_id = p.id)`,
    );
  }

  override async down(): Promise<void> {
    // Erased tokens cannot come back.
  }
}
