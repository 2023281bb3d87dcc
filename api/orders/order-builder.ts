import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, PaymentOrder, type Tenant } from '../../db/entities/index.js';
import { DEFAULT_DUNNING_DELAYS_MS } from '../../domain/dunning.js';
import { parseScheduleDate } from '../../domain/dates.js';
import { parseAmount } from '../../domain/money.js';
import type { Resolution } from './resolve-instructions.js';
import type { CreateOrderInput } from './schemas.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Turns a validated and resolved create-order request into entities on `em` (not yet flushed).
 * Date-only open and due dates are midnight in the tenant's time zone; the tenant's dunning
 * schedule is copied on; each instruction keeps the scheme version and options it was resolved with.
 */
export function buildOrder(
  em: EntityManager,
  tenant: Pick<Tenant, 'id' | 'timeZone' | 'dunningRetryDelaysDays'>,
  input: CreateOrderInput,
  resolutions: Resolution[],
): PaymentOrder {
  const now = new Date();
  const tenantId = tenant.id;
  const timeZone = tenant.timeZone ?? undefined;
  const order = em.create(PaymentOrder, {
    id: randomUUID(),
    tenantId,
    orderRef: input.orderRef,
    customerRef: input.customerRef ?? null,
    metadata: input.metadata ?? {},
    status: 'ACTIVE',
    projectionVersion: '0',
    workflowStartedAt: null,
    dunningDelaysMs: tenant.dunningRetryDelaysDays?.map((days) => days * DAY_MS) ?? [...DEFAULT_DUNNING_DELAYS_MS],
    createdAt: now,
    updatedAt: now,
  });
  input.instructions.forEach((instruction, position) => {
    order.instructions.add(
      em.create(PaymentInstruction, {
        id: randomUUID(),
        order,
        tenantId,
        position,
        instructionRef: instruction.instructionRef,
        direction: instruction.direction,
        amountMinor: parseAmount(instruction.amount, instruction.currency),
        currency: instruction.currency,
        country: instruction.country,
        openAt: parseScheduleDate(instruction.openDate, timeZone) as Date,
        dueAt: parseScheduleDate(instruction.dueDate, timeZone) as Date,
        customerRef: instruction.customerRef ?? input.customerRef ?? null,
        financialInstrumentId: instruction.financialInstrumentId ?? null,
        metadata: instruction.metadata ?? {},
        schemeId: resolutions[position].schemeId,
        schemeVersion: resolutions[position].schemeVersion,
        resolvedOptions: resolutions[position].options,
        paymentMethod: resolutions[position].chosen.paymentMethod,
        appId: resolutions[position].chosen.appId,
        status: 'PENDING',
        attempts: 0,
      }),
    );
  });
  return order;
}
