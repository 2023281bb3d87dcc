import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder, type Tenant } from '../db/entities/index.js';
import { DEFAULT_DUNNING_DELAYS_MS } from '../domain/dunning.js';
import { parseScheduleDate } from '../domain/dates.js';
import { parseAmount } from '../domain/money.js';
import type { InstructionPlan } from '../domain/instruction.js';
import { rowOf } from './read-model.js';
import type { Resolution } from './scheme-resolution.js';
import type { CreateOrderInput, InstructionInput } from './http/schemas.js';

const DAY_MS = 24 * 60 * 60 * 1000;

type TenantSettings = Pick<Tenant, 'id' | 'timeZone' | 'dunningRetryDelaysDays'> &
  Partial<Pick<Tenant, 'returnsPolicy' | 'arrearsExpiryDays'>>;

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
  return {
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
    schemeId: resolution.schemeId,
    schemeVersion: resolution.schemeVersion,
    options: resolution.options,
    appId: resolution.chosen.appId,
    paymentMethod: resolution.chosen.paymentMethod,
  };
}

/**
 * Turns a validated and resolved create-order request into entities on `em` (not yet flushed). The
 * tenant's dunning schedule is copied on; each instruction keeps the scheme version and options it
 * was resolved with.
 */
export function buildOrder(
  em: EntityManager,
  tenant: TenantSettings,
  input: CreateOrderInput,
  resolutions: Resolution[],
): PaymentOrder {
  const now = new Date();
  const order = em.create(PaymentOrder, {
    id: randomUUID(),
    tenantId: tenant.id,
    orderRef: input.orderRef,
    customerRef: input.customerRef ?? null,
    metadata: input.metadata ?? {},
    status: 'ACTIVE',
    projectionVersion: '0',
    workflowStartedAt: null,
    dunningDelaysMs: tenant.dunningRetryDelaysDays?.map((days) => days * DAY_MS) ?? [...DEFAULT_DUNNING_DELAYS_MS],
    returnsPolicy: tenant.returnsPolicy ?? null,
    arrearsExpiryDays: tenant.arrearsExpiryDays ?? null,
    createdAt: now,
    updatedAt: now,
  });
  input.instructions.forEach((instruction, position) => {
    const plan = planInstruction(instruction, {
      tenant,
      customerRef: input.customerRef,
      resolution: resolutions[position],
      position,
    });
    order.instructions.add(
      em.create(PaymentInstruction, {
        ...rowOf({
          ...plan,
          status: 'PENDING',
          attempts: 0,
          settledAmountMinor: '0',
          refundedAmountMinor: '0',
          returnedAmountMinor: '0',
        }),
        order,
        tenantId: tenant.id,
        metadata: instruction.metadata ?? {},
        projectionVersion: '0',
      }),
    );
  });
  return order;
}
