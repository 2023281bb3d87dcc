import type { MikroORM } from '@mikro-orm/postgresql';

/** Tables whose rows expire, each with the condition of an expired row, cleared of them in bounded batches. */
const EXPIRING: Record<string, string> = {
  idempotency_record: 'expires_at < now()',
  used_nonce: 'expires_at < now()',
  // A reconciliation run deletes its payments as it ends; these are what a run left: one that ended
  // but failed to delete them, or one that cannot still be running (a run takes minutes; one started
  // a day ago died with its process).
  reconciliation_entry: `run_id in (select id from reconciliation_run where status <> 'RUNNING' or created_at < now() - interval '1 day')`,
};
const BATCH = 1_000;

/**
 * Deletes expired idempotency records and HMAC nonces every minute, off the request path: a
 * sign-in or POST never pays for a table-wide delete. Expired rows left until then are harmless,
 * because their readers treat an expired row as absent. Also the payments reconciliation runs left.
 */
export class Housekeeping {
  constructor(private readonly orm: MikroORM) {}

  /** Rows deleted per table. */
  async runOnce(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    const connection = this.orm.em.getConnection();
    for (const [table, expired] of Object.entries(EXPIRING)) {
      deleted[table] = 0;
      for (;;) {
        // ctid batches keep each delete short, so it never holds many locks or a long transaction.
        const rows = await connection.execute(
          `delete from ${table} where ctid in (select ctid from ${table} where ${expired} limit ${BATCH}) returning 1`,
        );
        deleted[table] += rows.length;
        if (rows.length < BATCH) break;
      }
    }
    return deleted;
  }
}
