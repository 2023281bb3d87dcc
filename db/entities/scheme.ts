import { EntitySchema } from '@mikro-orm/core';
import type { SchemeKind } from '../../domain/scheme.js';

/**
 * A collection or payout scheme. Its rules live in versions: an edit publishes a new version, and
 * an instruction records the version it was resolved with, so it can always be explained.
 */
export class Scheme {
  id!: string;
  tenantId!: string;
  kind!: SchemeKind;
  name!: string;
  currentVersion!: number;
  /** The tenant's default scheme of this kind: used by instructions that name none. */
  isDefault = false;
  /** Deleted schemes keep their versions (instructions refer to them) but are neither listed nor used. */
  deletedAt?: Date | null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const SchemeSchema = new EntitySchema<Scheme>({
  class: Scheme,
  tableName: 'scheme',
  indexes: [
    { properties: ['tenantId', 'kind', 'createdAt', 'id'] },
    {
      name: 'scheme_one_default_per_kind',
      expression:
        'CREATE UNIQUE INDEX scheme_one_default_per_kind ON public.scheme USING btree (tenant_id, kind) WHERE (is_default AND (deleted_at IS NULL))',
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: {
      kind: 'm:1',
      entity: 'Tenant',
      mapToPk: true,
      fieldName: 'tenant_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    kind: { type: 'string', length: 8 },
    name: { type: 'string', length: 200 },
    currentVersion: { type: 'integer' },
    isDefault: { type: 'boolean' },
    deletedAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
