import { EntitySchema } from '@mikro-orm/core';

export type ReconciliationTrigger = 'SCHEDULED' | 'REQUESTED';
export type ReconciliationStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';
export type MismatchKind = 'missing' | 'extra' | 'amount' | 'currency' | 'status' | 'shared';

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
  /** Differences found, all of them. */
  mismatches = 0;
  /** Differences kept as items (and told as events): the first MAX_RECORDED_MISMATCHES found at most. */
  recorded = 0;
  /** Why a FAILED run could not compare (the provider's ledger unreachable, refused or malformed). */
  failure: string | null = null;
  finishedAt: Date | null = null;
  /** When the run last staged a ledger page or compared a page of entries: one that stops beating has stopped. */
  heartbeatAt: Date | null = null;
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
    recorded: { type: 'integer', default: 0 },
    failure: { type: 'string', length: 500, nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    heartbeatAt: { type: 'datetime', nullable: true },
    createdAt: { type: 'datetime' },
  },
});

export const ReconciliationItemSchema = new EntitySchema<ReconciliationItem>({
  class: ReconciliationItem,
  tableName: 'reconciliation_item',
  // By reference too: a recheck asks which of its differences an earlier run of the tenant's told.
  indexes: [{ properties: ['tenantId', 'runId', 'createdAt', 'id'] }, { properties: ['tenantId', 'providerRef'] }],
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

/**
 * A payment a run compares, held in the database while the run lasts (reconciliation/run-entries.ts):
 * each page of the provider's ledger as it is read (`theirs`), then ours that the period or the
 * ledger names (`ours`). A run deletes its own when it ends; housekeeping, those a run left.
 */
export class ReconciliationEntry {
  runId!: string;
  providerRef!: string;
  side!: 'ours' | 'theirs';
  direction!: string;
  amountMinor!: string;
  currency!: string;
  status!: string;
  /** When the provider made the payment, as it sent it (theirs only: its field `createdAt`). */
  madeAt: string | null = null;
  /** Made in the run's period (theirs only): only those can be extra, and they name ours to compare. */
  inPeriod = false;
  orderRef: string | null = null;
  instructionRef: string | null = null;
  /** Ours only: another of our instructions of the app holds this reference too (one payment counted twice). */
  shared = false;
}

export const ReconciliationEntrySchema = new EntitySchema<ReconciliationEntry>({
  class: ReconciliationEntry,
  tableName: 'reconciliation_entry',
  properties: {
    runId: {
      kind: 'm:1',
      entity: 'ReconciliationRun',
      mapToPk: true,
      primary: true,
      fieldName: 'run_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    providerRef: { type: 'string', length: 128, primary: true },
    side: { type: 'string', length: 6, primary: true },
    direction: { type: 'string', length: 6 },
    amountMinor: { type: 'string', length: 20 },
    currency: { type: 'string', length: 3 },
    status: { type: 'string', length: 16 },
    madeAt: { type: 'text', nullable: true },
    inPeriod: { type: 'boolean' },
    orderRef: { type: 'string', length: 50, nullable: true },
    instructionRef: { type: 'string', length: 50, nullable: true },
    shared: { type: 'boolean', default: false },
  },
});
