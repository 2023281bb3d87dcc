import { EntitySchema } from '@mikro-orm/core';
import type { BusinessDayRule } from '../../domain/business-days.js';

/** A company or department under an account. Tenants share nothing. */
export class Tenant {
  id!: string;
  accountId!: string;
  name!: string;
  /** IANA zone in which date-only open and due dates mean midnight; null means UTC. */
  timeZone?: string | null;
  /** Days between retries of a declined collection; null means the platform default. */
  dunningRetryDelaysDays?: number[] | null;
  /** What a returned payment does: RECOLLECT (retryable codes, on the dunning schedule) or FAIL; null means RECOLLECT. */
  returnsPolicy?: 'RECOLLECT' | 'FAIL' | null;
  /** Days a LATE instruction with nothing planned waits before it fails `expired`; null means 30. */
  arrearsExpiryDays?: number | null;
  /** How a due date on a weekend or public holiday moves to the day it is charged; null means FOLLOWING. */
  businessDayRule?: BusinessDayRule | null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const TenantSchema = new EntitySchema<Tenant>({
  class: Tenant,
  tableName: 'tenant',
  // The list's page order (created_at, id) ends the index: a page is one index range.
  indexes: [{ properties: ['accountId', 'createdAt', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    // The foreign key, kept as the id value (mapToPk): tenants are looked up by account id, never walked to.
    accountId: {
      kind: 'm:1',
      entity: 'Account',
      mapToPk: true,
      fieldName: 'account_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
      deferMode: 'deferred',
    },
    name: { type: 'string', length: 200 },
    timeZone: { type: 'string', length: 64, nullable: true },
    dunningRetryDelaysDays: { type: 'json', nullable: true },
    returnsPolicy: { type: 'string', length: 16, nullable: true },
    arrearsExpiryDays: { type: 'integer', nullable: true },
    businessDayRule: { type: 'string', length: 24, nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
