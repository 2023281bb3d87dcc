import { EntitySchema } from '@mikro-orm/core';

export type ReconciliationTrigger = 'SCHEDULED' | 'REQUESTED';
export type ReconciliationStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';
export type MismatchKind = 'missing' | 'extra' | 'amount' | 'currency' | 'status';

/**
 * One comparison of a provider's ledger for a period with our read model, for one installed app
 * of a tenant (ARCHITECTURE.md, "Reconciliation"). A scheduled run has a `scheduleKey` (app and
 * day), unique per tenant: two workers cannot both run the same day's.
 */
export class ReconciliationRun {
  id!: string;
  tenantId!: string;
  appId!: string;
  periodFrom!: Date;
  periodTo!: Date;
  trigger!: ReconciliationTrigger;
  scheduleKey: string | null = null;
  status: ReconciliationStatus = 'RUNNING';
  /** Payments compared: the provider's and ours, each once. */
  compared = 0;
  mismatches = 0;
  /** Why a FAILED run could not compare (the provider's ledger unreachable, refused or malformed). */
  failure: string | null = null;
  finishedAt: Date | null = null;
  createdAt: Date = new Date();
}

/** A difference a run found: the payment as we have it and as the provider has it. */
export class ReconciliationItem {
  id!: string;
  runId!: string;
  tenantId!: string;
  kind!: MismatchKind;
  providerRef!: string;
  orderRef: string | null = null;
  instructionRef: string | null = null;
  ours: Record<string, string> | null = null;
  theirs: Record<string, string> | null = null;
  createdAt: Date = new Date();
}

const tenantId = {
  kind: 'm:1',
  entity: 'Tenant',
  mapToPk: true,
  fieldName: 'tenant_id',
  deleteRule: 'cascade',
  updateRule: 'no action',
} as const;

export const ReconciliationRunSchema = new EntitySchema<ReconciliationRun>({
  class: ReconciliationRun,
  tableName: 'reconciliation_run',
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'] }],
  uniques: [{ name: 'reconciliation_run_schedule_unique', properties: ['tenantId', 'scheduleKey'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId,
    appId: { type: 'string', length: 64 },
    periodFrom: { type: 'datetime' },
    periodTo: { type: 'datetime' },
    trigger: { type: 'string', length: 16 },
    scheduleKey: { type: 'string', length: 100, nullable: true },
    status: { type: 'string', length: 16 },
    compared: { type: 'integer' },
    mismatches: { type: 'integer' },
    failure: { type: 'string', length: 500, nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
  },
});

export const ReconciliationItemSchema = new EntitySchema<ReconciliationItem>({
  class: ReconciliationItem,
  tableName: 'reconciliation_item',
  indexes: [{ properties: ['tenantId', 'runId', 'createdAt', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    runId: {
      kind: 'm:1',
      entity: 'ReconciliationRun',
      mapToPk: true,
      fieldName: 'run_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    tenantId,
    kind: { type: 'string', length: 16 },
    providerRef: { type: 'string', length: 128 },
    orderRef: { type: 'string', length: 50, nullable: true },
    instructionRef: { type: 'string', length: 50, nullable: true },
    ours: { type: 'json', nullable: true },
    theirs: { type: 'json', nullable: true },
    createdAt: { type: 'datetime' },
  },
});
