import { EntitySchema } from '@mikro-orm/core';

/** The first answer to a POST carrying an Idempotency-Key, replayed for 24 hours. */
export class IdempotencyRecord {
  id!: string;
  /** Who sent the key (tenant or account id): keys from different callers never collide. */
  scope!: string;
  key!: string;
  method!: string;
  path!: string;
  /** SHA-256 of the request body: the same key with another body is refused. */
  requestHash!: string;
  /** Null while the first request is still running. */
  responseStatus?: number | null;
  responseBody?: unknown;
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
    responseStatus: { type: 'integer', nullable: true },
    responseBody: { type: 'json', nullable: true },
    createdAt: { type: 'datetime' },
    expiresAt: { type: 'datetime' },
  },
});
