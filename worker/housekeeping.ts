import type { MikroORM } from '@mikro-orm/postgresql';
import { deleteInBatches } from '../db/delete-in-batches.js';
import { STOPPED_RUN_FAILURE } from '../reconciliation/reconciliation.js';
import { KEY_SCOPE_KEPT_DAYS } from '../orders/activities/key-scopes.js';

/** Tables whose rows expire, each with the condition of an expired row, cleared of them in bounded batches. */
const EXPIRING: Record<string, string> = {
  idempotency_record: 'expires_at < now()',
  used_nonce: 'expires_at < now()',
  provider_key_scope: `used_at < now() - interval '${KEY_SCOPE_KEPT_DAYS} days'`,
  // A reconciliation run deletes its payments once it has ended: these are what a run left (one
  // that ended without deleting them, or one given up below).
  reconciliation_entry: `not exists (select 1 from reconciliation_run r where r.id = run_id and r.status = 'RUNNING')`,
};
/**
 * Reconciliation runs whose process stopped: RUNNING without a beat for a day (a run beats at every
 * page it stages or compares; a scheduled day's is freed after an hour by the next worker, a
 * requested one only here). Given up first, so that a run still going after all writes nothing of
 * what it compared.
 */
const GIVE_UP_STOPPED_RUNS = `update reconciliation_run set status = 'FAILED', failure = ?, finished_at = now()
  where status = 'RUNNING' and coalesce(heartbeat_at, created_at) < now() - interval '1 day'`;

/**
 * Deletes expired idempotency records and HMAC nonces every minute, off the request path: a
 * sign-in or POST never pays for a table-wide delete. Expired rows left until then are harmless,
 * because their readers treat an expired row as absent. Also the payments reconciliation runs left,
 * which nothing reads once their run has ended.
 */
export class Housekeeping {
  constructor(private readonly orm: MikroORM) {}

  /** Rows deleted per table. */
  async runOnce(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    await this.orm.em.getConnection().execute(GIVE_UP_STOPPED_RUNS, [STOPPED_RUN_FAILURE]);
    for (const [table, expired] of Object.entries(EXPIRING))
      deleted[table] = await deleteInBatches(this.orm, table, expired);
    return deleted;
  }
}
