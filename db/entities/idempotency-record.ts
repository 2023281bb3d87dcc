import { EntitySchema } from '@mikro-orm/core';

/** The first answer to a POST carrying an Idempotency-Key, replayed for 24 hours. */
export class IdempotencyRecord {
  id!: string;
  /** Who sent the key (tenant or account id): keys from different callers never collide. */
  scope!: string;
  key!: string;
  method!: string;
  path!: string;
  /** SHA-256 of method, path and body: the same key with another request is refused. */
  requestHash!: string;
  /** The request holding the key while it runs; a retry may take it over once the lease has run out. */
  leaseToken?: string | null;
  leaseExpiresAt?: Date | null;
  /** Null while the first request is still running. */
  responseStatus?: number | null;
  /** The answer (status, headers, body), sealed under the master key: it can hold a new key's private key. */
  responseCiphertext?: string | null;
  createdAt: Date = new Date();
  expiresAt!: Date;
}

export const IdempotencyRecordSchema = new EntitySchema<IdempotencyRecord>({
  class: IdempotencyRecord,
  tableName: 'idempotency_record',
  uniques: [{ properties: ['scope', 'key'], name: 'idempotency_record_scope_key_unique' }],
  indexes: [{ properties: ['expiresAt'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    scope: { type: 'string', length: 64 },
    key: { type: 'string', length: 255 },
    method: { type: 'string', length: 8 },
    path: { type: 'string', length: 500 },
    requestHash: { type: 'string', length: 64 },
    leaseToken: { type: 'uuid', nullable: true },
    leaseExpiresAt: { type: 'datetime', nullable: true },
    responseStatus: { type: 'integer', nullable: true },
    responseCiphertext: { type: 'text', nullable: true },
    createdAt: { type: 'datetime' },
    expiresAt: { type: 'datetime' },
  },
});
