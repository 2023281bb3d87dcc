// The payment instruction's one declared shape (ARCHITECTURE.md, "Layout"): what was planned for it,
// where it stands, and how each field is stored. Everything else is made from this declaration: the
// read model's entity and the projection's upsert (their columns), the row codec
// (orders/read-model.ts), the workflow's record, event and provider codecs
// (orders/contract/instruction-codec.ts), the webhook payload (orders/event-payloads.ts) and the
// API's (orders/http/presenter.ts).
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
  /** The due date asked for. */
  dueAt: string;
  /**
   * When it is charged: dueAt moved off weekends and public holidays of its country by the tenant's
   * business-day rule (domain/business-days.ts). Absent on instructions taken before that rule: dueAt.
   */
  chargeAt?: string;
  customerRef?: string;
  financialInstrumentId?: string;
  /** A stored instrument (customers/instrument-store.ts) paid in place of a financialInstrumentId: its token is read by the payment activity, never carried here. */
  instrumentId?: string;
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
  /** What settled, every time it did (a payment returned and collected again counts twice), in minor units. */
  settledAmountMinor: string;
  /** What refunds that succeeded gave back. */
  refundedAmountMinor: string;
  /** What returns and chargebacks took back. */
  returnedAmountMinor: string;
  /** Why the last settled payment was taken back: the bank's return code, or the chargeback's reason. */
  returnCode?: string;
  /** The provider's reference of that payment: providerRef names the payment made since, if any. */
  returnedRef?: string;
  /**
   * What that payment was for, in minor units: the instruction's amount may be changed before it is
   * collected again, and the payment taken back keeps its own (reconciliation compares it).
   */
  returnedPaymentMinor?: string;
  openedAt?: string;
  processingAt?: string;
  lateAt?: string;
  settledAt?: string;
  failedAt?: string;
  cancelledAt?: string;
  returnedAt?: string;
}

/** The instruction as the read model, the API and the events know it: its plan, where it stands, and what it does next. */
export interface Instruction extends InstructionPlan, InstructionProgress {
  /** The next moment something is due to happen to it (absent while it waits for a change, and once final). */
  nextActionAt?: string;
}

type ColumnType = 'uuid' | 'integer' | 'text' | 'bigint' | 'timestamptz' | 'jsonb';

export interface Column {
  /** Which part of the instruction the field is: its plan, its progress, or computed from both. */
  part: 'plan' | 'progress' | 'computed';
  /** Its name in payment_instruction. */
  column: string;
  type: ColumnType;
  /** Characters, for text columns. */
  length?: number;
  nullable?: boolean;
  /** Set once, when the row is inserted: a projection never changes it. */
  fixed?: boolean;
}

/**
 * The compiler holds the interfaces and the table together: every field has its column, in the right
 * part, and an optional field is stored in a nullable column.
 */
type ColumnsOf<T> = {
  [K in keyof T]-?: Column & {
    part: K extends keyof InstructionPlan ? 'plan' : K extends keyof InstructionProgress ? 'progress' : 'computed';
  } & (undefined extends T[K] ? { nullable: true } : unknown);
};

/** Every field of the instruction, in its column of payment_instruction. */
export const INSTRUCTION_COLUMNS = {
  instructionId: { part: 'plan', column: 'id', type: 'uuid', fixed: true },
  position: { part: 'plan', column: 'position', type: 'integer', fixed: true },
  instructionRef: { part: 'plan', column: 'instruction_ref', type: 'text', length: 50, fixed: true },
  direction: { part: 'plan', column: 'direction', type: 'text', length: 6, fixed: true },
  amountMinor: { part: 'plan', column: 'amount_minor', type: 'bigint' },
  currency: { part: 'plan', column: 'currency', type: 'text', length: 3, fixed: true },
  country: { part: 'plan', column: 'country', type: 'text', length: 2, fixed: true },
  openAt: { part: 'plan', column: 'open_at', type: 'timestamptz' },
  dueAt: { part: 'plan', column: 'due_at', type: 'timestamptz' },
  chargeAt: { part: 'plan', column: 'charge_at', type: 'timestamptz', nullable: true },
  customerRef: { part: 'plan', column: 'customer_ref', type: 'text', length: 50, nullable: true, fixed: true },
  financialInstrumentId: { part: 'plan', column: 'financial_instrument_id', type: 'text', length: 100, nullable: true },
  instrumentId: { part: 'plan', column: 'instrument_id', type: 'uuid', nullable: true },
  // Nullable in the table (rows from before schemes were required); every instruction has them now.
  schemeId: { part: 'plan', column: 'scheme_id', type: 'uuid', nullable: true },
  schemeVersion: { part: 'plan', column: 'scheme_version', type: 'integer', nullable: true },
  options: { part: 'plan', column: 'resolved_options', type: 'jsonb', nullable: true },
  appId: { part: 'plan', column: 'app_id', type: 'text', length: 64, nullable: true },
  paymentMethod: { part: 'plan', column: 'payment_method', type: 'text', length: 16, nullable: true },
  status: { part: 'progress', column: 'status', type: 'text', length: 16 },
  attempts: { part: 'progress', column: 'attempts', type: 'integer' },
  providerRef: { part: 'progress', column: 'provider_ref', type: 'text', length: 128, nullable: true },
  voucherCode: { part: 'progress', column: 'voucher_code', type: 'text', length: 64, nullable: true },
  failureCode: { part: 'progress', column: 'failure_code', type: 'text', length: 64, nullable: true },
  settledAmountMinor: { part: 'progress', column: 'settled_amount_minor', type: 'bigint' },
  refundedAmountMinor: { part: 'progress', column: 'refunded_amount_minor', type: 'bigint' },
  returnedAmountMinor: { part: 'progress', column: 'returned_amount_minor', type: 'bigint' },
  returnCode: { part: 'progress', column: 'return_code', type: 'text', length: 64, nullable: true },
  returnedRef: { part: 'progress', column: 'returned_ref', type: 'text', length: 128, nullable: true },
  returnedPaymentMinor: { part: 'progress', column: 'returned_payment_minor', type: 'bigint', nullable: true },
  nextActionAt: { part: 'computed', column: 'next_action_at', type: 'timestamptz', nullable: true },
  openedAt: { part: 'progress', column: 'opened_at', type: 'timestamptz', nullable: true },
  processingAt: { part: 'progress', column: 'processing_at', type: 'timestamptz', nullable: true },
  lateAt: { part: 'progress', column: 'late_at', type: 'timestamptz', nullable: true },
  settledAt: { part: 'progress', column: 'settled_at', type: 'timestamptz', nullable: true },
  failedAt: { part: 'progress', column: 'failed_at', type: 'timestamptz', nullable: true },
  cancelledAt: { part: 'progress', column: 'cancelled_at', type: 'timestamptz', nullable: true },
  returnedAt: { part: 'progress', column: 'returned_at', type: 'timestamptz', nullable: true },
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

const fieldsOf = (part: Column['part']) =>
  INSTRUCTION_FIELDS.filter((field) => INSTRUCTION_COLUMNS[field].part === part);

/** The fields of the plan, as the workflow carries them. */
export const PLAN_FIELDS = fieldsOf('plan') as (keyof InstructionPlan)[];
/** The fields of its progress, as the workflow's loop moves them. */
export const PROGRESS_FIELDS = fieldsOf('progress') as (keyof InstructionProgress)[];

/** What an event tells of the instruction, as it was when the event happened (webhook payloads carry these). */
export const EVENT_FIELDS = [
  'instructionRef',
  'direction',
  'amountMinor',
  'currency',
  'dueAt',
  'chargeAt',
  'instrumentId',
  'status',
  'attempts',
  'appId',
  'paymentMethod',
  'providerRef',
  'failureCode',
  'voucherCode',
  'refundedAmountMinor',
  'returnedAmountMinor',
  'returnCode',
] as const satisfies readonly (keyof Instruction)[];

export type EventInstruction = Pick<Instruction, (typeof EVENT_FIELDS)[number]>;

/** The fields of `value` named in `fields`, in that order (those it lacks stay absent). */
export function pickFields<T extends object, K extends keyof T>(value: T, fields: readonly K[]): Pick<T, K> {
  const picked = {} as Pick<T, K>;
  for (const field of fields) if (value[field] !== undefined) picked[field] = value[field];
  return picked;
}

/** The rule every schedule keeps: an instruction does not fall due before it opens. */
export const DUE_BEFORE_OPEN = { code: 'due_before_open', message: 'dueDate must not be before openDate' } as const;

/** Whether a due date comes before its open date, which no instruction may have. */
export function dueBeforeOpen(openAt: Date | string, dueAt: Date | string): boolean {
  return new Date(dueAt).getTime() < new Date(openAt).getTime();
}

/** The option a choice names, if the instruction was offered it: only what its scheme offered may pay it. */
export function offeredOption(
  options: readonly ResolvedOption[],
  choice: { appId: string; paymentMethod: string },
): ResolvedOption | undefined {
  return options.find((o) => o.appId === choice.appId && o.paymentMethod === choice.paymentMethod);
}

/** A financial instrument's id as an instruction names it: 1–100 printable ASCII characters (its column's length). */
export const FINANCIAL_INSTRUMENT_ID = {
  pattern: /^[\x21-\x7e]{1,100}$/,
  message: 'must be 1–100 printable ASCII characters',
} as const;
