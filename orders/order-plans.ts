import { createHash, randomUUID } from 'node:crypto';
import stableStringify from 'safe-stable-stringify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder, type Tenant } from '../db/entities/index.js';
import { DEFAULT_DUNNING_DELAYS_MS } from '../domain/dunning.js';
import { formatInTimeZone, fromZonedTime, toZonedTime } from 'date-fns-tz';
import { chargeDateFor, type BusinessDayRule } from '../domain/business-days.js';
import { dueBeforeOpen, DUE_BEFORE_OPEN, offeredOption } from '../domain/instruction.js';
import { isDateOnly, parseScheduleDate } from '../domain/dates.js';
import type { PaymentMethod } from '../domain/scheme.js';
import { parseAmount } from '../domain/money.js';
import { Refusal } from '../domain/refusal.js';
import type { InstructionPlan } from '../domain/instruction.js';
import { rowOf, type NewOrder, type OrderRow } from './read-model.js';
import type { Resolution } from './scheme-resolution.js';
import type { CreateOrderInput, InstructionInput } from './http/schemas.js';

const DAY_MS = 24 * 60 * 60 * 1000;

type TenantSettings = Pick<Tenant, 'id' | 'timeZone' | 'dunningRetryDelaysDays'> &
  Partial<Pick<Tenant, 'returnsPolicy' | 'arrearsExpiryDays' | 'businessDayRule'>>;

/** The tenant's settings an order is planned with: what taking an order reads of its tenant. */
export const TENANT_SETTINGS = [
  'id',
  'timeZone',
  'dunningRetryDelaysDays',
  'returnsPolicy',
  'arrearsExpiryDays',
  'businessDayRule',
] as const satisfies readonly (keyof TenantSettings)[];

/**
 * Bank debits and transfers clear only on the banks' business days; cards and vouchers are paid any
 * day, so moving their charge would only make the money later.
 */
const BANKING_DAY_METHODS: ReadonlySet<PaymentMethod> = new Set(['BANK_DEBIT', 'BANK_TRANSFER']);

/**
 * When an instruction is charged (ARCHITECTURE.md, "Business days"): a bank payment due on a weekend
 * or a public holiday of its country moves by the tenant's rule, at the same local time of day, but
 * never before it opens (a preceding day before its open date rolls forward instead).
 */
export function chargeAtOf(
  plan: Pick<InstructionPlan, 'openAt' | 'dueAt' | 'country' | 'paymentMethod' | 'appId' | 'options'>,
  tenant: Pick<Tenant, 'timeZone'> & Partial<Pick<Tenant, 'businessDayRule'>>,
  nowMs = Date.now(),
): string {
  const rule = tenant.businessDayRule ?? 'FOLLOWING';
  const banking = BANKING_DAY_METHODS.has(plan.paymentMethod) && rule !== 'NONE';
  const calendar = { country: plan.country, timeZone: tenant.timeZone ?? undefined };
  const roll = (at: Date, how: BusinessDayRule) => (banking ? chargeDateFor(at, { ...calendar, rule: how }) : at);
  const due = new Date(plan.dueAt);
  let charge = roll(due, rule);
  if (charge.getTime() < Date.parse(plan.openAt)) charge = roll(due, 'FOLLOWING');
  // The customer must be told its notice period ahead, counted in calendar days as SEPA counts them:
  // a charge on an earlier day moves to the first day (at the same time of day) that keeps it.
  const noticeDays = offeredOption(plan.options, plan)?.preNotificationDays ?? 0;
  if (noticeDays > 0) {
    const zone = calendar.timeZone ?? 'UTC';
    const dayOf = (ms: number) => Date.parse(`${formatInTimeZone(ms, zone, 'yyyy-MM-dd')}T00:00:00Z`);
    const short = dayOf(nowMs) + noticeDays * DAY_MS - dayOf(charge.getTime());
    if (short > 0) charge = roll(addDays(charge, Math.round(short / DAY_MS), zone), 'FOLLOWING');
  }
  return charge.toISOString();
}

/** `at` moved by whole calendar days in `timeZone` (UTC when unset), keeping its local time of day. */
function addDays(at: Date, days: number, timeZone = 'UTC'): Date {
  const local = toZonedTime(at, timeZone);
  local.setDate(local.getDate() + days);
  return fromZonedTime(local, timeZone);
}

/**
 * An instruction as the workflow plans it, from a validated request and its resolution. Date-only
 * open and due dates are midnight in the tenant's time zone.
 */
export function planInstruction(
  instruction: InstructionInput,
  {
    tenant,
    customerRef,
    resolution,
    position,
  }: { tenant: TenantSettings; customerRef?: string; resolution: Resolution; position: number },
): InstructionPlan {
  const timeZone = tenant.timeZone ?? undefined;
  const plan: InstructionPlan = {
    instructionId: randomUUID(),
    position,
    instructionRef: instruction.instructionRef,
    direction: instruction.direction,
    amountMinor: parseAmount(instruction.amount, instruction.currency).toString(),
    currency: instruction.currency,
    country: instruction.country,
    openAt: (parseScheduleDate(instruction.openDate, timeZone) as Date).toISOString(),
    dueAt: (parseScheduleDate(instruction.dueDate, timeZone) as Date).toISOString(),
    customerRef: instruction.customerRef ?? customerRef,
    financialInstrumentId: instruction.financialInstrumentId,
    instrumentId: instruction.instrumentId,
    schemeId: resolution.schemeId,
    schemeVersion: resolution.schemeVersion,
    options: resolution.options,
    appId: resolution.chosen.appId,
    paymentMethod: resolution.chosen.paymentMethod,
  };
  return { ...plan, chargeAt: chargeAtOf(plan, tenant) };
}

/**
 * Refuses instructions whose due date comes before their open date in the tenant's time zone: a
 * calendar date against a date-time can only be compared there (the request's schema compares the
 * others). A 400 naming each at `pathOf(index)`.
 */
export function refuseDueBeforeOpen(
  tenant: TenantSettings,
  instructions: readonly { openDate: string; dueDate: string }[],
  pathOf: (index: number) => string,
): void {
  const timeZone = tenant.timeZone ?? undefined;
  const issues = instructions.flatMap(({ openDate, dueDate }, index) => {
    const open = parseScheduleDate(openDate, timeZone);
    const due = parseScheduleDate(dueDate, timeZone);
    return open && due && dueBeforeOpen(open, due) ? [{ path: pathOf(index), ...DUE_BEFORE_OPEN }] : [];
  });
  if (issues.length > 0) throw Refusal.invalid(issues);
}

/**
 * How an order's request hash is made: bumped whenever what validation outputs changes (a default, a
 * transform), so a hash of before counts as unknown rather than as other contents. v2 hashes the
 * request as it is stored (canonicalRequest); v1 hashed it as written, so `10.5` and `10.50` were
 * other contents.
 */
const REQUEST_HASH_VERSION = 'v2:';
const AS_WRITTEN = 'v1:';

function requestHash(version: string, request: object): string {
  return version + createHash('sha256').update(stableStringify(request)).digest('base64url');
}

/**
 * A validated request as it is stored: amounts in minor units, date-times as instants (a calendar
 * date stays as written: its instant is the tenant's midnight), and empty metadata as none.
 */
function canonicalRequest({ metadata, instructions, ...order }: CreateOrderInput): object {
  const instant = (value: string) => (isDateOnly(value) ? value : parseScheduleDate(value)!.toISOString());
  const withMetadata = (kept?: Record<string, unknown>) =>
    kept && Object.keys(kept).length > 0 ? { metadata: kept } : {};
  return {
    ...order,
    ...withMetadata(metadata),
    instructions: instructions.map(({ metadata: own, amount, openDate, dueDate, ...instruction }) => ({
      ...instruction,
      amount: parseAmount(amount, instruction.currency).toString(),
      openDate: instant(openDate),
      dueDate: instant(dueDate),
      ...withMetadata(own),
    })),
  };
}

/**
 * What an order was created from, as a hash of the request as it is stored, its keys in a stable
 * order: the same order sent again, however its JSON, its decimals and its offsets are written, has
 * the same hash.
 */
export function orderRequestHash(input: CreateOrderInput): string {
  return requestHash(REQUEST_HASH_VERSION, canonicalRequest(input));
}

/**
 * Whether a stored order was created from other contents than `input`: unknown (false) for an order
 * from before hashes were kept, or hashed a way not known here.
 */
export function createdFromOther(stored: { requestHash?: string | null }, input: CreateOrderInput): boolean {
  const hash = stored.requestHash;
  if (hash?.startsWith(REQUEST_HASH_VERSION)) return hash !== orderRequestHash(input);
  if (hash?.startsWith(AS_WRITTEN)) return hash !== requestHash(AS_WRITTEN, input);
  return false;
}

/** An orderRef this order cannot have: `message` says why, `path` names the field, `reason` says it there. */
export function orderRefConflict(message: string, path: string, reason: string): Refusal {
  return new Refusal('conflict', 'order_ref_conflict', message, [{ path, code: 'duplicate', message: reason }]);
}

/**
 * Turns a validated and resolved create-order request into the rows that hold it. The tenant's
 * dunning schedule is copied on; each instruction keeps the scheme version and options it was
 * resolved with.
 */
export function planOrder(tenant: TenantSettings, input: CreateOrderInput, resolutions: Resolution[]): NewOrder {
  const now = new Date();
  const order: OrderRow = {
    id: randomUUID(),
    tenantId: tenant.id,
    orderRef: input.orderRef,
    customerRef: input.customerRef ?? null,
    metadata: input.metadata ?? {},
    status: 'ACTIVE',
    projectionVersion: '0',
    workflowStartedAt: null,
    requestHash: orderRequestHash(input),
    dunningDelaysMs: tenant.dunningRetryDelaysDays?.map((days) => days * DAY_MS) ?? [...DEFAULT_DUNNING_DELAYS_MS],
    returnsPolicy: tenant.returnsPolicy ?? null,
    arrearsExpiryDays: tenant.arrearsExpiryDays ?? null,
    createdAt: now,
    updatedAt: now,
  };
  const instructions = input.instructions.map((instruction, position) => ({
    ...rowOf({
      ...planInstruction(instruction, {
        tenant,
        customerRef: input.customerRef,
        resolution: resolutions[position],
        position,
      }),
      status: 'PENDING',
      attempts: 0,
      settledAmountMinor: '0',
      refundedAmountMinor: '0',
      returnedAmountMinor: '0',
    }),
    metadata: instruction.metadata ?? {},
  }));
  return { order, instructions };
}

/** The order planned as entities on `em` (not yet flushed): for code that stores orders through the ORM. */
export function buildOrder(
  em: EntityManager,
  tenant: TenantSettings,
  input: CreateOrderInput,
  resolutions: Resolution[],
): PaymentOrder {
  const planned = planOrder(tenant, input, resolutions);
  const order = em.create(PaymentOrder, planned.order);
  for (const row of planned.instructions) {
    order.instructions.add(
      em.create(PaymentInstruction, { ...row, order, tenantId: order.tenantId, projectionVersion: '0' }),
    );
  }
  return order;
}
