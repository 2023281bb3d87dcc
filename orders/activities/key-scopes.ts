import type { MikroORM } from '@mikro-orm/postgresql';

/**
 * Days a key's first destination is kept after the last call under it. A key of unknown outcome is
 * asked about every hour, so one unused this long is done with; were it used again after all, its
 * calls would go on as before this table (the destination they find is kept as the first).
 */
export const KEY_SCOPE_KEPT_DAYS = 90;

/** An idempotency key as sent: by whom, through which app. */
export interface SentKey {
  tenantId: string;
  appId: string;
  idempotencyKey: string;
}

/** Where each idempotency key was first sent (db/entities/provider-key-scope.ts). */
export interface KeyScopes {
  /**
   * The digest of where `key` was first sent: `digest` when none is kept yet (kept from now on). Never
   * replaced: a try that sent nothing leaves its key for good (the workflow moves to a new key after
   * any definite refusal), while a try Temporal gave up on may still be under way, and a later try's
   * digest in place of its own would let the two go to two providers.
   */
  firstSentTo(key: SentKey, digest: string): Promise<string>;
}

const KEEP = `insert into provider_key_scope (idempotency_key, tenant_id, app_id, scope_digest, used_at)
  values (?, ?, ?, ?, now()) on conflict (idempotency_key) do update set used_at = now() returning scope_digest`;

/** Keys' first destinations in the database: one statement a call. */
export function keyScopesIn(orm: MikroORM): KeyScopes {
  return {
    async firstSentTo({ tenantId, appId, idempotencyKey }, digest) {
      const [row] = await orm.em
        .getConnection()
        .execute<{ scope_digest: string }[]>(KEEP, [idempotencyKey, tenantId, appId, digest]);
      return row.scope_digest;
    },
  };
}
