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
   * The digest of where `key` was first sent. `first`: no try under the key may have reached a
   * provider yet, so `digest` is kept as its first (in place of one kept by a try that then sent
   * nothing); otherwise the kept one is answered, or `digest` where none is kept.
   */
  firstSentTo(key: SentKey, digest: string, first: boolean): Promise<string>;
}

const KEEP = `insert into provider_key_scope (idempotency_key, tenant_id, app_id, scope_digest, used_at)
  values (?, ?, ?, ?, now()) on conflict (idempotency_key) do update set used_at = now()`;
const REPLACING = `, tenant_id = excluded.tenant_id, app_id = excluded.app_id, scope_digest = excluded.scope_digest`;

/** Keys' first destinations in the database: one statement a call. */
export function keyScopesIn(orm: MikroORM): KeyScopes {
  return {
    async firstSentTo({ tenantId, appId, idempotencyKey }, digest, first) {
      const [row] = await orm.em
        .getConnection()
        .execute<{ scope_digest: string }[]>(`${KEEP}${first ? REPLACING : ''} returning scope_digest`, [
          idempotencyKey,
          tenantId,
          appId,
          digest,
        ]);
      return row.scope_digest;
    },
  };
}
