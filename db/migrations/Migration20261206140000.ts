import { Migration } from '@mikro-orm/migrations';

/**
 * The settlement export lists an instruction whose last settlement has no row of its own as of that
 * settlement (orders/instruction-search.ts): one projected by a worker of the code before those rows,
 * during the deploy that brought them. This index finds whether it has one.
 */
export class Migration20261206140000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "payment_settlement_instruction_id_settled_at_index" on "payment_settlement" ("instruction_id", "settled_at");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "payment_settlement_instruction_id_settled_at_index";`);
  }
}
