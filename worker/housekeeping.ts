import type { MikroORM } from '@mikro-orm/postgresql';

/** Tables whose rows expire, each cleared of what has expired in bounded batches. */
const EXPIRING_TABLES = ['idempotency_record', 'used_nonce'] as const;
const BATCH = 1_000;

/**
 * Deletes expired idempotency records and HMAC nonces every minute, off the request path: a
 * sign-in or POST never pays for a table-wide delete. Expired rows left until then are harmless,
 * because their readers treat an expired row as absent.
 */
export class Housekeeping {
  constructor(private readonly orm: MikroORM) {}

  /** Rows deleted per table. */
  async runOnce(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    const connection = this.orm.em.getConnection();
    for (const table of EXPIRING_TABLES) {
      deleted[table] = 0;
      for (;;) {
        // ctid batches keep each delete short, so it never holds many locks or a long transaction.
        const rows = await connection.execute(
          `delete from ${table} where ctid in (select ctid from ${table} where expires_at < now() limit ${BATCH}) returning 1`,
        );
        deleted[table] += rows.length;
        if (rows.length < BATCH) break;
      }
    }
    return deleted;
  }
}
