import { EntitySchema } from '@mikro-orm/core';
import type { SchemeRule } from '../../domain/scheme.js';

/** The rules of one version of a scheme, never changed once written. */
export class SchemeVersion {
  schemeId!: string;
  version!: number;
  tenantId!: string;
  rules!: SchemeRule[];
  createdAt: Date = new Date();
}

export const SchemeVersionSchema = new EntitySchema<SchemeVersion>({
  class: SchemeVersion,
  tableName: 'scheme_version',
  properties: {
    schemeId: {
      kind: 'm:1',
      entity: 'Scheme',
      mapToPk: true,
      fieldName: 'scheme_id',
      primary: true,
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    version: { type: 'integer', primary: true },
    tenantId: { type: 'uuid' },
    rules: { type: 'json' },
    createdAt: { type: 'datetime' },
  },
});
