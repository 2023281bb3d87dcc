// The payment instruction's one declared shape (ARCHITECTURE.md, "Instruction lifecycle"): what was
// planned for it, where it stands, and how each field is stored. The row, the workflow's record, the
// API, the events and the provider request are all made from this declaration by the codecs in
// orders/contract/instruction-codec.ts; the read model's entity and its upsert take their columns
// from INSTRUCTION_COLUMNS.
import type { InstructionStatus } from './instruction-status.js';
import type { PaymentMethod, ResolvedOption } from './scheme.js';

export type Direction = 'DEBIT' | 'CREDIT';

/**
 * What was decided for the instruction when it was taken (or last amended): the payment, its dates,
 * and how it is paid. Money travels as a string of minor units (JSON has no bigint), times as ISO 8601.
 */
export interface InstructionPlan {
  /** Its row in the read model (the workflow inserts the rows of instructions added later). */
  instructionId: string;
  /** Its place in the order, as submitted or added. */
  position: number;
  instructionRef: string;
  direction: Direction;
  amountMinor: string;
  currency: string;
  country: string;
  openAt: string;
  dueAt: string;
  customerRef?: string;
  financialInstrumentId?: string;
  /** The scheme version it was resolved with, the options it offered, and the one chosen. */
  schemeId: string;
  schemeVersion: number;
  options: ResolvedOption[];
  appId: string;
  paymentMethod: PaymentMethod;
}

/** Where the instruction stands: what its workflow has done with it so far. */
export interface InstructionProgress {
  status: InstructionStatus;
  /** Provider calls made. */
  attempts: number;
  providerRef?: string;
  /** The code of a voucher paid out. */
  voucherCode?: string;
  failureCode?: string;
  openedAt?: string;
  processingAt?: string;
  lateAt?: string;
  settledAt?: string;
  failedAt?: string;
  cancelledAt?: string;
}

/** The instruction as the read model, the API and the events know it: its plan, where it stands, and what it does next. */
export interface Instruction extends InstructionPlan, InstructionProgress {
  /** The next moment something is due to happen to it (absent while it waits for a change, and once final). */
  nextActionAt?: string;
}

type ColumnType = 'uuid' | 'integer' | 'text' | 'bigint' | 'timestamptz' | 'jsonb';

export interface Column {
  /** Its name in payment_instruction. */
  column: string;
  type: ColumnType;
  /** Characters, for text columns. */
  length?: number;
  nullable?: boolean;
  /** Set once, when the row is inserted: a projection never changes it. */
  fixed?: boolean;
}

/** An optional field must be stored in a nullable column: the compiler holds the two declarations together. */
type ColumnsOf<T> = { [K in keyof T]-?: undefined extends T[K] ? Column & { nullable: true } : Column };

/** Every field of the instruction, in its column of payment_instruction. */
export const INSTRUCTION_COLUMNS = {
  instructionId: { column: 'id', type: 'uuid', fixed: true },
  position: { column: 'position', type: 'integer', fixed: true },
  instructionRef: { column: 'instruction_ref', type: 'text', length: 50, fixed: true },
  direction: { column: 'direction', type: 'text', length: 6, fixed: true },
  amountMinor: { column: 'amount_minor', type: 'bigint' },
  currency: { column: 'currency', type: 'text', length: 3, fixed: true },
  country: { column: 'country', type: 'text', length: 2, fixed: true },
  openAt: { column: 'open_at', type: 'timestamptz' },
  dueAt: { column: 'due_at', type: 'timestamptz' },
  customerRef: { column: 'customer_ref', type: 'text', length: 50, nullable: true, fixed: true },
  financialInstrumentId: { column: 'financial_instrument_id', type: 'text', length: 100, nullable: true },
  // Nullable in the table (rows from before schemes were required); every instruction has them now.
  schemeId: { column: 'scheme_id', type: 'uuid', nullable: true },
  schemeVersion: { column: 'scheme_version', type: 'integer', nullable: true },
  options: { column: 'resolved_options', type: 'jsonb', nullable: true },
  appId: { column: 'app_id', type: 'text', length: 64, nullable: true },
  paymentMethod: { column: 'payment_method', type: 'text', length: 16, nullable: true },
  status: { column: 'status', type: 'text', length: 16 },
  attempts: { column: 'attempts', type: 'integer' },
  providerRef: { column: 'provider_ref', type: 'text', length: 128, nullable: true },
  voucherCode: { column: 'voucher_code', type: 'text', length: 64, nullable: true },
  failureCode: { column: 'failure_code', type: 'text', length: 64, nullable: true },
  nextActionAt: { column: 'next_action_at', type: 'timestamptz', nullable: true },
  openedAt: { column: 'opened_at', type: 'timestamptz', nullable: true },
  processingAt: { column: 'processing_at', type: 'timestamptz', nullable: true },
  lateAt: { column: 'late_at', type: 'timestamptz', nullable: true },
  settledAt: { column: 'settled_at', type: 'timestamptz', nullable: true },
  failedAt: { column: 'failed_at', type: 'timestamptz', nullable: true },
  cancelledAt: { column: 'cancelled_at', type: 'timestamptz', nullable: true },
} as const satisfies ColumnsOf<Instruction>;

type Columns = typeof INSTRUCTION_COLUMNS;
type Stored<K extends keyof Instruction> = Columns[K]['type'] extends 'timestamptz'
  ? Date
  : Columns[K]['type'] extends 'bigint'
    ? bigint
    : NonNullable<Instruction[K]>;

/** The instruction as its row holds it: times as Date, money as bigint, absent values as null. */
export type InstructionRow = {
  -readonly [K in keyof Instruction]: Columns[K] extends { nullable: true } ? Stored<K> | null : Stored<K>;
};

export const INSTRUCTION_FIELDS = Object.keys(INSTRUCTION_COLUMNS) as (keyof Instruction)[];

/** The fields of the plan, as the workflow carries them; the rest is progress (and nextActionAt, computed). */
export const PLAN_FIELDS = [
  'instructionId',
  'position',
  'instructionRef',
  'direction',
  'amountMinor',
  'currency',
  'country',
  'openAt',
  'dueAt',
  'customerRef',
  'financialInstrumentId',
  'schemeId',
  'schemeVersion',
  'options',
  'appId',
  'paymentMethod',
] as const satisfies readonly (keyof InstructionPlan)[];

export const PROGRESS_FIELDS = [
  'status',
  'attempts',
  'providerRef',
  'voucherCode',
  'failureCode',
  'openedAt',
  'processingAt',
  'lateAt',
  'settledAt',
  'failedAt',
  'cancelledAt',
] as const satisfies readonly (keyof InstructionProgress)[];

/** What an event tells of the instruction, as it was when the event happened (webhook payloads carry these). */
export const EVENT_FIELDS = [
  'instructionRef',
  'direction',
  'amountMinor',
  'currency',
  'dueAt',
  'status',
  'attempts',
  'appId',
  'paymentMethod',
  'providerRef',
  'failureCode',
  'voucherCode',
] as const satisfies readonly (keyof Instruction)[];

export type EventInstruction = Pick<Instruction, (typeof EVENT_FIELDS)[number]>;

/** The fields of `value` named in `fields`, in that order (those it lacks stay absent). */
export function pickFields<T extends object, K extends keyof T>(value: T, fields: readonly K[]): Pick<T, K> {
  const picked = {} as Pick<T, K>;
  for (const field of fields) if (value[field] !== undefined) picked[field] = value[field];
  return picked;
}

/** A financial instrument's id as an instruction names it: 1–100 printable ASCII characters (its column's length). */
export const FINANCIAL_INSTRUMENT_ID = {
  pattern: /^[\x21-\x7e]{1,100}$/,
  message: 'must be 1–100 printable ASCII characters',
} as const;
