import type { EntityManager } from '@mikro-orm/postgresql';
import type { SecretBox } from './secret-box.js';

/** Every column that holds a secret sealed under the master key, and the column naming its row. */
export const SEALED_COLUMNS = [
  { table: 'security_key', idColumn: 'public_key', column: 'private_key_ciphertext' },
  { table: 'idempotency_record', idColumn: 'id', column: 'response_ciphertext' },
  { table: 'app_installation', idColumn: 'id', column: 'secrets_ciphertext' },
  { table: 'app_installation', idColumn: 'id', column: 'retired_secrets_ciphertext' },
  { table: 'webhook_endpoint', idColumn: 'id', column: 'secret_ciphertext' },
  { table: 'webhook_endpoint', idColumn: 'id', column: 'previous_secret_ciphertext' },
  { table: 'payment_instrument', idColumn: 'id', column: 'token_ciphertext' },
  { table: 'payment_instrument', idColumn: 'id', column: 'made_under_ciphertext' },
] as const;

export type SealedTable = (typeof SEALED_COLUMNS)[number]['table'];

/** The additional data a sealed value is bound to: its table and row. Copied anywhere else, it does not open. */
export function sealedContext(table: SealedTable, id: string): string {
  return `${table}:${id}`;
}

const BATCH = 500;

/**
 * Re-seals every secret not sealed under the box's current key (after a master-key rotation),
 * in batches, each its own transaction. A row changed meanwhile is left as it is (compare and set).
 * Returns how many values were re-sealed per table. A value that opens under none of the box's keys
 * stops the run: it names the row, never the value.
 */
export async function resealAll(em: EntityManager, box: SecretBox): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const connection = em.getConnection();
  for (const { table, idColumn, column } of SEALED_COLUMNS) {
    counts[table] ??= 0;
    let after = '';
    for (;;) {
      const rows: { id: string; sealed: string }[] = await connection.execute(
        `select ${idColumn}::text as id, ${column} as sealed from ${table}
         where ${column} is not null and ${column} not like ? and ${idColumn}::text > ? order by ${idColumn}::text limit ${BATCH}`,
        [`v2.${box.keyId}.%`, after],
      );
      if (rows.length === 0) break;
      await em.transactional(async (tx) => {
        for (const row of rows) {
          const context = sealedContext(table, row.id);
          const resealed = box.seal(box.open(row.sealed, context), context);
          await tx
            .getConnection()
            .execute(
              `update ${table} set ${column} = ? where ${idColumn}::text = ? and ${column} = ?`,
              [resealed, row.id, row.sealed],
              'run',
              tx.getTransactionContext(),
            );
          counts[table] += 1;
        }
      });
      after = rows[rows.length - 1].id;
    }
  }
  return counts;
}
