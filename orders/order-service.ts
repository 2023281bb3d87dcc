import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { createHash } from 'node:crypto';
import type { EntityManager, FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { recordAudit, type AuditedChange } from '../api/audit/record-audit.js';
import type { Principal } from '../api/auth/principal.js';
import { findPage, type Page, type PageQuery } from '../api/http/pagination.js';
import { PaymentInstruction, PaymentInstrument, PaymentOrder, PaymentRefund, Tenant } from '../db/entities/index.js';
import type { PaymentMethod } from '../domain/scheme.js';
import { parseScheduleDate } from '../domain/dates.js';
import { dueBeforeOpen, DUE_BEFORE_OPEN, offeredOption, type InstructionPlan } from '../domain/instruction.js';
import type { InstructionStatus, OrderStatus } from '../domain/instruction-status.js';
import { formatAmount, parseAmountAt } from '../domain/money.js';
import { refundableMinor, RESOLVED_NOT_REFUNDED } from '../domain/refund.js';
import { Refusal } from '../domain/refusal.js';
import { orderWorkflowId } from './contract/ids.js';
import { UPDATE_DEADLINE_MS } from './contract/limits.js';
import {
  addInstructionUpdate,
  amendInstructionUpdate,
  cancelInstructionUpdate,
  cancelOrderUpdate,
  createRefundUpdate,
  payInstructionUpdate,
  resolveInstructionUpdate,
  resolveRefundUpdate,
  retryInstructionUpdate,
  type InstructionAmendment,
} from './contract/messages.js';
import { CHANGE_REFUSALS, CLOSED_DURING_CHANGE, orderEndedMessage, REFUSAL_OF_CHANGE } from './contract/refusals.js';
import type {
  AmendInstructionInput,
  CreateOrderInput,
  InstructionInput,
  RefundInput,
  ResolveInstructionInput,
  ResolveRefundInput,
  RetryInstructionInput,
} from './http/schemas.js';
import {
  chargeAtOf,
  createdFromOther,
  orderRefConflict,
  planInstruction,
  planOrder,
  refuseDueBeforeOpen,
  TENANT_SETTINGS,
} from './order-plans.js';
import { readRow } from '../db/read-row.js';
import { transactionally } from '../db/transactionally.js';
import { planOf } from './contract/instruction-codec.js';
import { insertOrder, instructionFromRow, type NewOrder } from './read-model.js';
import { definedOnly } from './workflow/instruction-machine.js';
import { instructionOptions, type PaymentChoice, type PaymentOption } from './payment-options.js';
import { readCurrentSchemes, resolveInstructions, vouchersOffered, type CurrentScheme } from './scheme-resolution.js';
import { RowCache } from '../db/row-cache.js';
import { StartMarks, startOrderWorkflow, workflowInputOf } from './start-order.js';
import { checkPaysThrough, methodOf, storedInstrumentFor } from './stored-instruments.js';

/** Temporal's failure of an update its workflow accepted and closed before completing. */
const TAKEN_THEN_CLOSED = 'AcceptedUpdateCompletedWorkflow';

export interface OrderServiceDependencies {
  orm: MikroORM;
  temporal: Client;
  /** What taking an order reads of its tenant, kept while nothing changes it (the API's; default: read each time). */
  readCaches?: OrderReadCaches;
}

/** The tenant's settings and its current schemes (by tenant id), as taking an order reads them. */
export interface OrderReadCaches {
  tenants: RowCache<TenantSettingsRow>;
  schemes: RowCache<CurrentScheme[]>;
}

export type TenantSettingsRow = Pick<Tenant, (typeof TENANT_SETTINGS)[number]>;

/** Caches that keep nothing: every order reads its tenant and schemes. */
function uncachedOrderReads(): OrderReadCaches {
  return { tenants: new RowCache(undefined, 'tenant'), schemes: new RowCache(undefined, 'scheme') };
}

/** An order as the read model shows it, with its instructions in their order. */
export interface StoredOrder {
  order: PaymentOrder;
  instructions: PaymentInstruction[];
}

/** What taking an order did: stored it, its workflow to be started; or found it stored, sent before as it is now. */
export type TakenOrder = { sentAgain: false; created: NewOrder } | { sentAgain: true; stored: StoredOrder };

/** A change is sent as an update with this id: a retried change is the same update, taken once. */
type UpdateId = string | undefined;

/** The statuses of a workflow that has closed (Temporal's names): none of them takes a change again. */
const CLOSED_STATUSES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT', 'CONTINUED_AS_NEW']);
/** What a workflow last known alive longer ago than its namespace keeps closed runs, and not found, is said to be. */
const DELETED_AFTER_CLOSING = 'closed and no longer kept by Temporal (its retention deleted it)';
/** How long the namespace's retention, once asked, is taken as it was. */
const RETENTION_KEPT_MS = 10 * 60_000;

/** How long the payment page waits for Temporal to say whether an order's workflow has closed. */
const CLOSED_LOOK_DEADLINE_MS = 2_000;

/**
 * Everything that can be done to an order (ARCHITECTURE.md, "Temporal design"): what the REST
 * routes and the payment page both call. Orders are stored and their workflows started; changes to
 * a running order are Temporal updates whose validators decide synchronously whether they may be
 * made; nothing here writes what the workflow owns, which projects it. Every "no" is a Refusal.
 */
export class OrderService {
  private readonly startMarks: StartMarks;
  private readonly reads: OrderReadCaches;
  /** The namespace's retention of closed runs, and when it was asked. */
  private retention?: { ms: number; askedAt: number };

  constructor(private readonly deps: OrderServiceDependencies) {
    this.startMarks = new StartMarks(deps.orm);
    this.reads = deps.readCaches ?? uncachedOrderReads();
  }

  // ---- reading -------------------------------------------------------------------------------

  async findOrder(em: EntityManager, tenantId: string, orderRef: string): Promise<PaymentOrder> {
    const order = await em.findOne(PaymentOrder, { tenantId, orderRef });
    if (!order) throw new Refusal('not_found', 'order_not_found', `no order ${orderRef}`);
    return order;
  }

  async findInstruction(em: EntityManager, order: PaymentOrder, instructionRef: string): Promise<PaymentInstruction> {
    const instruction = await em.findOne(PaymentInstruction, {
      order: order.id,
      tenantId: order.tenantId,
      instructionRef,
    });
    if (!instruction) {
      throw new Refusal(
        'not_found',
        'instruction_not_found',
        `order ${order.orderRef} has no instruction ${instructionRef}`,
      );
    }
    return instruction;
  }

  async getOrder(em: EntityManager, tenantId: string, orderRef: string): Promise<StoredOrder> {
    return this.withInstructions(em, await this.findOrder(em, tenantId, orderRef));
  }

  /** A page of the tenant's orders, newest first, each with a count of its instructions by status. */
  async listOrders(
    em: EntityManager,
    tenantId: string,
    query: PageQuery & { status?: OrderStatus; customerRef?: string; createdFrom?: string; createdTo?: string },
  ): Promise<Page<PaymentOrder> & { counts: Map<string, Partial<Record<InstructionStatus, number>>> }> {
    const where: FilterQuery<PaymentOrder> = { tenantId };
    if (query.status) where.status = query.status;
    if (query.customerRef) where.customerRef = query.customerRef;
    // A range of the page's own order (created_at): the same index serves it.
    if (query.createdFrom || query.createdTo)
      where.createdAt = {
        ...(query.createdFrom ? { $gte: new Date(query.createdFrom) } : {}),
        ...(query.createdTo ? { $lt: new Date(query.createdTo) } : {}),
      };
    const page = await findPage(em, PaymentOrder, where, query, 'id');
    return {
      ...page,
      counts: await instructionCounts(
        em,
        tenantId,
        page.items.map((o) => o.id),
      ),
    };
  }

  /** How an instruction may be paid: the options its scheme offered for it, best first, with their vouchers. */
  paymentOptions(em: EntityManager, instruction: PaymentInstruction): Promise<PaymentOption[]> {
    return instructionOptions(em, instruction);
  }

  // ---- taking an order -----------------------------------------------------------------------

  /**
   * Resolves each instruction against its scheme and stores the order, in one statement, on `em`
   * (the caller's transaction, when it has one). Its workflow is started by `start`, once that has
   * committed. An order stored before from the same contents is not stored again (sentAgain), even
   * when a check it passed then fails now (its instrument removed, its scheme deleted since); its
   * orderRef taken by other contents is a refusal.
   */
  async createOrder(em: EntityManager, tenantId: string, input: CreateOrderInput): Promise<TakenOrder> {
    // One naming a stored instrument is taken in a transaction, which holds its customer (storedInstrumentFor).
    if (!em.isInTransaction() && input.instructions.some((instruction) => instruction.instrumentId !== undefined))
      return transactionally(em, (tx) => this.createOrder(tx, tenantId, input));
    let taken: NewOrder;
    try {
      taken = await this.planned(em, tenantId, input);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const stored = await this.takenBefore(em, tenantId, input);
      if (stored) return stored;
      throw err;
    }
    if (await insertOrder(em, taken)) return { sentAgain: false, created: taken };
    // Its ref taken since it was checked: a retry racing the first send after a lost answer.
    const stored = await this.takenBefore(em, tenantId, input);
    if (!stored) throw new Error(`order ${input.orderRef} was neither inserted nor found`);
    return stored;
  }

  /** The order as it would be stored: each instruction checked and resolved against its scheme. */
  private async planned(em: EntityManager, tenantId: string, input: CreateOrderInput): Promise<NewOrder> {
    const tenant = await this.reads.tenants.read(tenantId, () =>
      readRow(em, Tenant, { id: tenantId }, TENANT_SETTINGS),
    );
    if (!tenant) throw new Refusal('not_found', 'tenant_not_found', `no tenant ${tenantId}`);
    refuseDueBeforeOpen(tenant, input.instructions, (index) => `instructions[${index}].dueDate`);
    const instruments = await this.namedInstruments(
      em,
      tenantId,
      input.customerRef,
      input.instructions,
      'instructions',
    );
    const resolutions = await resolveInstructions(
      em,
      tenantId,
      input.instructions.map((instruction, index) =>
        instruments[index]
          ? { ...instruction, paymentMethod: instruments[index].paymentMethod as PaymentMethod }
          : instruction,
      ),
      'instructions',
      async (schemesEm, id) => (await this.reads.schemes.read(id, () => readCurrentSchemes(schemesEm, id))) ?? [],
    );
    instruments.forEach(
      (instrument, index) =>
        instrument && checkPaysThrough(instrument, resolutions[index].chosen, `instructions[${index}].instrumentId`),
    );
    return planOrder(tenant, input, resolutions);
  }

  /**
   * The order stored under the input's orderRef, when the same contents were sent before (a retry
   * after a lost answer); undefined when none is. Other contents under that ref are a refusal.
   */
  private async takenBefore(
    em: EntityManager,
    tenantId: string,
    input: CreateOrderInput,
  ): Promise<TakenOrder | undefined> {
    const order = await em.findOne(PaymentOrder, { tenantId, orderRef: input.orderRef });
    if (!order) return undefined;
    if (createdFromOther(order, input)) {
      throw orderRefConflict(
        `an order with orderRef ${input.orderRef} exists, created from other contents: this one was not taken`,
        'orderRef',
        'orderRef is already used by an order of this tenant with other contents',
      );
    }
    return { sentAgain: true, stored: await this.withInstructions(em, order) };
  }

  /** Marks the orders started so far (see StartMarks): what stopping the API waits for. */
  close(): Promise<void> {
    return this.startMarks.flush();
  }

  /**
   * Starts a stored order's workflow; if Temporal cannot take it now, the reconciler will. The order
   * is marked started a moment later, with others started about then (see StartMarks). False when it
   * could not be started.
   */
  async start({ order, instructions }: NewOrder, log: Logger): Promise<boolean> {
    try {
      await startOrderWorkflow(this.deps.temporal, workflowInputOf(order, instructions));
      this.startMarks.add(order.id);
      return true;
    } catch (err) {
      log.warn({ err, tenantId: order.tenantId, orderRef: order.orderRef }, 'could not start order workflow yet');
      return false;
    }
  }

  /**
   * The stored instruments instructions name (by index; undefined where none is named), each the
   * instruction's customer's, with the method it pays by: what the scheme must resolve them to.
   */
  private async namedInstruments(
    em: EntityManager,
    tenantId: string,
    orderCustomerRef: string | null | undefined,
    instructions: { instrumentId?: string; customerRef?: string; paymentMethod?: PaymentMethod }[],
    paths: 'instructions' | 'body',
  ): Promise<(PaymentInstrument | undefined)[]> {
    const at = (index: number, field: string) => (paths === 'instructions' ? `instructions[${index}].${field}` : field);
    const found: (PaymentInstrument | undefined)[] = [];
    for (const [index, instruction] of instructions.entries()) {
      if (instruction.instrumentId === undefined) {
        found.push(undefined);
        continue;
      }
      const instrument = await storedInstrumentFor(
        em,
        tenantId,
        instruction.customerRef ?? orderCustomerRef,
        instruction.instrumentId,
        at(index, 'instrumentId'),
      );
      methodOf(instrument, instruction.paymentMethod, at(index, 'paymentMethod'));
      found.push(instrument);
    }
    return found;
  }

  // ---- changes to a running order ------------------------------------------------------------

  async cancelOrder(em: EntityManager, tenantId: string, orderRef: string, updateId: UpdateId): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    await this.change(order, (handle) => handle.executeUpdate(cancelOrderUpdate, { args: [], updateId }));
    return this.reread(em, order);
  }

  async cancelInstruction(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    await this.change(order, (handle) =>
      handle.executeUpdate(cancelInstructionUpdate, {
        args: [{ instructionRef: instruction.instructionRef }],
        updateId,
      }),
    );
    return this.reread(em, order);
  }

  /** Resolved against its scheme as at order creation, in the tenant's time zone. */
  async addInstruction(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    input: InstructionInput,
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
    refuseDueBeforeOpen(tenant, [input], () => 'dueDate');
    const [instrument] = await this.namedInstruments(em, tenantId, order.customerRef, [input], 'body');
    const [resolution] = await resolveInstructions(
      em,
      tenantId,
      [instrument ? { ...input, paymentMethod: instrument.paymentMethod as PaymentMethod } : input],
      'body',
    );
    if (instrument) checkPaysThrough(instrument, resolution.chosen, 'instrumentId');
    const plan = planInstruction(input, {
      tenant,
      customerRef: order.customerRef ?? undefined,
      resolution,
      position: 0,
    });
    await this.change(order, (handle) =>
      handle.executeUpdate(addInstructionUpdate, { args: [{ plan, metadata: input.metadata ?? {} }], updateId }),
    );
    return this.reread(em, order);
  }

  /**
   * Dates are resolved in the tenant's time zone; a new amount, scheme, method or instrument is
   * resolved against the scheme again (how it is paid follows from the scheme, for the new amount).
   */
  async amendInstruction(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    input: AmendInstructionInput,
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const current = await this.findInstruction(em, order, instructionRef);
    const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
    const amendment: InstructionAmendment = {};
    const timeZone = tenant.timeZone ?? undefined;
    if (input.openDate) amendment.openAt = parseScheduleDate(input.openDate, timeZone)!.toISOString();
    if (input.dueDate) amendment.dueAt = parseScheduleDate(input.dueDate, timeZone)!.toISOString();
    if (dueBeforeOpen(amendment.openAt ?? current.openAt, amendment.dueAt ?? current.dueAt)) {
      throw Refusal.invalid([{ path: 'dueDate', ...DUE_BEFORE_OPEN }]);
    }
    if (input.financialInstrumentId) amendment.financialInstrumentId = input.financialInstrumentId;
    if (input.instrumentId) amendment.instrumentId = input.instrumentId;
    if (input.amount !== undefined)
      amendment.amountMinor = parseAmountAt(input.amount, current.currency, 'amount').toString();
    const repays =
      input.amount !== undefined ||
      input.schemeId !== undefined ||
      input.paymentMethod !== undefined ||
      input.financialInstrumentId !== undefined ||
      input.instrumentId !== undefined;
    // A stored instrument (named now, or kept) pays by its own method, through its own app.
    const instrument = input.instrumentId
      ? await storedInstrumentFor(
          em,
          tenantId,
          current.customerRef ?? order.customerRef,
          input.instrumentId,
          'instrumentId',
        )
      : repays && current.instrumentId && !input.financialInstrumentId
        ? ((await em.findOne(PaymentInstrument, { id: current.instrumentId, tenantId })) ?? undefined)
        : undefined;
    const instrumentMethod = instrument ? methodOf(instrument, input.paymentMethod, 'paymentMethod') : undefined;
    if (repays) {
      const [resolution] = await resolveInstructions(
        em,
        tenantId,
        [
          {
            direction: current.direction,
            amount: input.amount ?? formatAmount(current.amountMinor, current.currency),
            currency: current.currency,
            country: current.country,
            schemeId: input.schemeId ?? current.schemeId ?? undefined,
            // A new amount or scheme chooses the best method again, unless one is named.
            paymentMethod:
              instrumentMethod ??
              input.paymentMethod ??
              (input.schemeId || input.amount ? undefined : (current.paymentMethod ?? undefined)),
            financialInstrumentId: input.financialInstrumentId ?? current.financialInstrumentId ?? undefined,
          },
        ],
        'body',
      );
      if (instrument) checkPaysThrough(instrument, resolution.chosen, 'instrumentId');
      Object.assign(amendment, {
        schemeId: resolution.schemeId,
        schemeVersion: resolution.schemeVersion,
        options: resolution.options,
        appId: resolution.chosen.appId,
        paymentMethod: resolution.chosen.paymentMethod,
      });
    }
    if (amendment.openAt !== undefined || amendment.dueAt !== undefined || repays) {
      amendment.chargeAt = chargeAtOf({ ...planOfRow(current), ...definedOnly(amendment) }, tenant);
    }
    await this.change(order, (handle) =>
      handle.executeUpdate(amendInstructionUpdate, {
        args: [{ instructionRef: current.instructionRef, amendment, metadata: input.metadata }],
        updateId,
      }),
    );
    return this.reread(em, order);
  }

  /**
   * Ends a payment of unknown outcome with what the tenant's admin found out at the provider, and
   * records who said so in the audit log, with the change.
   */
  async resolveInstruction(
    em: EntityManager,
    actor: Principal,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    input: ResolveInstructionInput,
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    const { outcome, providerRef, note } = input;
    // One payment settles one instruction: a reference another holds would count its money twice,
    // and reconciliation, which matches by reference, would see only one of them.
    if (outcome === 'SETTLED' && providerRef) {
      const holder = await em.findOne(
        PaymentInstruction,
        { tenantId, appId: instruction.appId, providerRef, instructionId: { $ne: instruction.instructionId } },
        { populate: ['order'] },
      );
      if (holder)
        throw new Refusal(
          'conflict',
          'provider_ref_in_use',
          `payment ${providerRef} is instruction ${holder.instructionRef} of order ${holder.order.orderRef}`,
          [{ path: 'providerRef', code: 'in_use', message: 'another instruction holds this payment' }],
        );
    }
    const audit = {
      action: 'instruction.resolve',
      targetType: 'instruction',
      targetId: instruction.instructionId,
      details: { orderRef, instructionRef, outcome, providerRef: providerRef ?? null, note },
    };
    await this.audited(actor, audit, updateId, () =>
      this.change(order, (handle) =>
        handle.executeUpdate(resolveInstructionUpdate, {
          args: [{ instructionRef: instruction.instructionRef, outcome, ...(providerRef ? { providerRef } : {}) }],
          updateId,
        }),
      ),
    );
    return this.reread(em, order);
  }

  /**
   * The customer pays an instruction now with one of its options: the one path every payment by a
   * customer takes (the API's pay route and the hosted page), as an update the order's workflow
   * validates, so a second payment while one is under way or done is refused: one charge.
   */
  async payInstruction(
    em: EntityManager,
    order: PaymentOrder,
    instruction: PaymentInstruction,
    choice: PaymentChoice,
    updateId: UpdateId,
    /** What the customer entered on the provider's form for this payment (the page alone passes it). */
    entered?: PaymentInstrument,
  ): Promise<void> {
    const option = offeredOption(instruction.options ?? [], choice);
    if (!option) {
      throw Refusal.invalid([
        {
          path: 'paymentMethod',
          code: 'option_not_offered',
          message: `${choice.paymentMethod} through ${choice.appId} is not an option of this instruction`,
        },
      ]);
    }
    if (option.paymentMethod === 'VOUCHER') {
      const offered = await vouchersOffered(em, order.tenantId, option, instruction);
      if (!offered.some((v) => v.voucherId === choice.voucherId)) {
        throw Refusal.invalid([
          {
            path: 'voucherId',
            code: 'voucher_not_offered',
            message: 'not a voucher this option offers for the instruction',
          },
        ]);
      }
      // Offered for the amount read here: the workflow refuses the payout (409 amount_changed) if
      // the instruction has another now (an amendment the read model does not show yet).
      choice = { ...choice, amountMinor: choice.amountMinor ?? instruction.amountMinor.toString() };
    }
    if (choice.instrumentId !== undefined && option.paymentMethod !== 'VOUCHER') {
      // Entered on the provider's form just now (the page), or saved by the instruction's customer.
      const instrument =
        entered?.id === choice.instrumentId
          ? entered
          : await storedInstrumentFor(
              em,
              order.tenantId,
              instruction.customerRef ?? order.customerRef,
              choice.instrumentId,
              'instrumentId',
            );
      checkPaysThrough(instrument, option, 'instrumentId');
      return this.sendPayment(order, instruction, choice, { instrumentId: instrument.id }, updateId);
    }
    // A voucher pays out a voucher, anything else pays with an instrument: never the one for the other.
    const field = option.paymentMethod === 'VOUCHER' ? 'voucherId' : 'financialInstrumentId';
    const financialInstrumentId = choice[field];
    if (financialInstrumentId === undefined) {
      throw Refusal.invalid([{ path: field, code: 'required', message: `${option.paymentMethod} needs ${field}` }]);
    }
    await this.sendPayment(order, instruction, choice, { financialInstrumentId }, updateId);
  }

  private async sendPayment(
    order: PaymentOrder,
    instruction: PaymentInstruction,
    { appId, paymentMethod, amountMinor }: PaymentChoice,
    paysWith: { financialInstrumentId: string } | { instrumentId: string },
    updateId: UpdateId,
  ): Promise<void> {
    await this.change(order, (handle) =>
      handle.executeUpdate(payInstructionUpdate, {
        args: [
          {
            instructionRef: instruction.instructionRef,
            appId,
            paymentMethod,
            ...paysWith,
            ...(amountMinor === undefined ? {} : { amountMinor }),
          },
        ],
        updateId,
      }),
    );
  }

  /** Pay now, for the pay route: the order and instruction by their refs, and the order as it then stands. */
  async payInstructionByRef(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    { amount, ...choice }: Omit<PaymentChoice, 'amountMinor'> & { amount?: string },
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    const shown =
      amount === undefined ? {} : { amountMinor: parseAmountAt(amount, instruction.currency, 'amount').toString() };
    await this.payInstruction(em, order, instruction, { ...choice, ...shown }, updateId);
    return this.reread(em, order);
  }

  // ---- after settlement ----------------------------------------------------------------------

  /** Refuses a refund of `amountMinor` the instruction cannot take: a payout, not SETTLED, or more than is left. */
  private async refuseUnlessRefundable(
    em: EntityManager,
    instruction: PaymentInstruction,
    amountMinor: bigint,
  ): Promise<void> {
    if (instruction.direction !== 'DEBIT') {
      throw new Refusal(
        'conflict',
        'instruction_not_refundable',
        `instruction ${instruction.instructionRef} is a payout; only collections are refunded`,
      );
    }
    if (instruction.status !== 'SETTLED') {
      const why =
        instruction.returnCode && instruction.status !== 'PROCESSING'
          ? ` (its payment was taken back: ${instruction.returnCode})`
          : '';
      throw new Refusal(
        'conflict',
        'instruction_not_refundable',
        `instruction ${instruction.instructionRef} is ${instruction.status}${why}; only a SETTLED collection can be refunded`,
      );
    }
    const refunds = await em.find(PaymentRefund, {
      tenantId: instruction.tenantId,
      instructionId: instruction.instructionId,
    });
    const money = {
      settledAmountMinor: instruction.settledAmountMinor.toString(),
      returnedAmountMinor: instruction.returnedAmountMinor.toString(),
      providerRef: instruction.providerRef ?? undefined,
      amountMinor: instruction.amountMinor.toString(),
    };
    const leftOf = (counted: PaymentRefund[]) =>
      refundableMinor(
        money,
        counted.map((r) => ({ amountMinor: r.amountMinor.toString(), status: r.status, paymentRef: r.paymentRef })),
      );
    const left = leftOf(refunds);
    if (amountMinor <= left) return;
    // Only refunds not yet sent stand in its way: the workflow, which holds them, decides. Such a row
    // may be of one it never took (a worker killed in the task that wrote it, the update then lost),
    // which must not hold back the rest of the payment for ever. One the provider has answered counts.
    if (amountMinor <= leftOf(refunds.filter((r) => r.status !== 'PENDING' || r.providerRef))) return;
    throw refundTooLarge(left, instruction.currency);
  }

  /**
   * Refunds a SETTLED collection in full or in part, through the app that collected it. The order's
   * workflow decides (it holds what was refunded and returned, refunds under way included); the
   * read model is checked first only to say in the API's words how much is left. The refund's id
   * comes from the request's idempotency key, so a retried request names the same refund.
   */
  async createRefund(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    input: RefundInput,
    updateId: string,
  ): Promise<PaymentRefund> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    const amountMinor = parseAmountAt(input.amount, instruction.currency, 'amount');
    const refundId = refundIdOf(tenantId, updateId);
    // A retry whose first answer was lost (its key freed by a 503, or past its 24 hours) is the
    // refund made then, not a new one to check against what is left after it. One the read model
    // shows PENDING is sent again under its update's id, which the workflow takes at most once: a
    // worker killed in the task that took it has projected it already, and if Temporal then lost the
    // update (durable only once that task completed), nothing else would ever make the refund.
    const made = await em.findOne(PaymentRefund, { refundId, tenantId });
    if (made && made.status !== 'PENDING') return made;
    if (!made) await this.refuseUnlessRefundable(em, instruction, amountMinor);
    // The workflow's "too large" (it counts refunds under way) in the words of the check above.
    const tooLarge = (type: string, details: unknown[]) =>
      type === CHANGE_REFUSALS.refundTooLarge && typeof details[0] === 'string'
        ? refundTooLarge(BigInt(details[0]), instruction.currency)
        : undefined;
    try {
      await this.change(
        order,
        (handle) =>
          handle.executeUpdate(createRefundUpdate, {
            args: [
              {
                instructionRef: instruction.instructionRef,
                refundId,
                amountMinor: amountMinor.toString(),
                ...(input.reason ? { reason: input.reason } : {}),
              },
            ],
            updateId,
          }),
        tooLarge,
      );
    } catch (err) {
      // The workflow has the refund, taken by a run before a continue-as-new that has since
      // forgotten its update's id (TakenUpdates keeps the last hundred): it is the one made then.
      if (!(made && err instanceof Refusal && err.code === 'instruction_exists')) throw err;
    }
    em.clear();
    const stored = await em.findOne(PaymentRefund, { refundId, tenantId });
    if (stored) return stored;
    // Taken, but not yet in the read model (a slow projection): as it was taken.
    return Object.assign(new PaymentRefund(), {
      refundId,
      tenantId,
      orderId: order.id,
      instructionId: instruction.instructionId,
      instructionRef: instruction.instructionRef,
      number: 0,
      amountMinor,
      currency: instruction.currency,
      reason: input.reason ?? null,
      paymentRef: instruction.providerRef ?? '',
      status: 'PENDING' as const,
      createdAt: new Date(),
    });
  }

  /**
   * A refund of unknown outcome ended with what a tenant admin found out from the provider: it keeps
   * its key until then, as a payment does (ARCHITECTURE.md, "After settlement"). Audited.
   */
  async resolveRefund(
    em: EntityManager,
    actor: Principal,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    refundId: string,
    input: ResolveRefundInput,
    updateId: UpdateId,
  ): Promise<PaymentRefund> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    const { outcome, providerRef, note } = input;
    // One refund of the provider's is one of ours: a reference another refund holds would count its
    // money twice, and a callback of it could be checked against the other's amount.
    if (outcome === 'SUCCEEDED' && providerRef) {
      const refund = await em.findOne(PaymentRefund, { refundId, tenantId });
      const appId = refund?.appId ?? instruction.appId;
      const holder = await em.findOne(PaymentRefund, {
        tenantId,
        providerRef,
        refundId: { $ne: refundId },
        $or: [{ appId }, { appId: null }],
      });
      if (holder)
        throw new Refusal(
          'conflict',
          'provider_ref_in_use',
          `refund ${providerRef} is another refund of this tenant (${holder.refundId})`,
          [{ path: 'providerRef', code: 'in_use', message: 'another refund holds this provider refund' }],
        );
    }
    const audit = {
      action: 'refund.resolve',
      targetType: 'refund',
      targetId: refundId,
      details: { orderRef, instructionRef, outcome, providerRef: providerRef ?? null, note },
    };
    const { projected } = await this.audited(actor, audit, updateId, () =>
      this.change(order, (handle) =>
        handle.executeUpdate(resolveRefundUpdate, {
          args: [
            { instructionRef: instruction.instructionRef, refundId, outcome, ...(providerRef ? { providerRef } : {}) },
          ],
          updateId,
        }),
      ),
    );
    em.clear();
    const stored = await em.findOneOrFail(PaymentRefund, { refundId, tenantId });
    if (projected) return stored;
    // Taken, but not yet in the read model (a slow projection): as it was resolved.
    return Object.assign(stored, {
      status: outcome,
      ...(providerRef ? { providerRef } : {}),
      failureCode: outcome === 'FAILED' ? RESOLVED_NOT_REFUNDED : null,
      ...(outcome === 'FAILED' ? { failedAt: new Date() } : { succeededAt: new Date() }),
    });
  }

  /** A page of an instruction's refunds, newest first. */
  async listRefunds(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    query: PageQuery,
  ): Promise<Page<PaymentRefund>> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    return findPage(em, PaymentRefund, { tenantId, instructionId: instruction.instructionId }, query, 'refundId');
  }

  /** A FAILED instruction tried again: open, with a new idempotency key, due at the given date or now. */
  async retryInstruction(
    em: EntityManager,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    input: RetryInstructionInput,
    updateId: UpdateId,
  ): Promise<StoredOrder> {
    const order = await this.findOrder(em, tenantId, orderRef);
    const instruction = await this.findInstruction(em, order, instructionRef);
    const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
    // A saved instrument of the customer's, of the app the instruction pays through.
    const instrument = input.instrumentId
      ? await storedInstrumentFor(
          em,
          tenantId,
          instruction.customerRef ?? order.customerRef,
          input.instrumentId,
          'instrumentId',
        )
      : undefined;
    if (instrument) checkPaysThrough(instrument, instruction, 'instrumentId');
    const dueAt = input.dueDate
      ? parseScheduleDate(input.dueDate, tenant.timeZone ?? undefined)!.toISOString()
      : undefined;
    // A retry is a new charge: at the date asked (or now), moved by business days and the customer's notice.
    const chargeAt = chargeAtOf({ ...planOfRow(instruction), dueAt: dueAt ?? new Date().toISOString() }, tenant);
    await this.change(order, (handle) =>
      handle.executeUpdate(retryInstructionUpdate, {
        args: [
          {
            instructionRef: instruction.instructionRef,
            ...(input.financialInstrumentId ? { financialInstrumentId: input.financialInstrumentId } : {}),
            ...(instrument ? { instrumentId: instrument.id } : {}),
            ...(dueAt ? { dueAt } : {}),
            ...(chargeAt ? { chargeAt } : {}),
          },
        ],
        updateId,
      }),
    );
    return this.reread(em, order);
  }

  /**
   * Sends a change to the order's workflow as an update; a refusal comes back with its reason, an
   * order not running as it stands.
   */
  private async change<T>(
    order: PaymentOrder,
    send: (handle: WorkflowHandle) => Promise<T>,
    /** A refusal of the workflow's told in the caller's words, from its type and details; undefined for the usual. */
    worded?: (type: string, details: unknown[]) => Refusal | undefined,
  ): Promise<T> {
    const { temporal } = this.deps;
    const handle = temporal.workflow.getHandle(orderWorkflowId(order.tenantId, order.orderRef));
    try {
      return await temporal.connection.withDeadline(Date.now() + UPDATE_DEADLINE_MS, () => send(handle));
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        // Accepted, the change was made (its handler makes it at once, then waits for the read
        // model), and the workflow was stopped before it answered. Nothing starts it again, but a
        // payment or refund it started may have been sent, and a projection under way may still
        // write the change: it may or may not show.
        if (err.cause.type === TAKEN_THEN_CLOSED) {
          throw new Refusal(
            'conflict',
            CLOSED_DURING_CHANGE,
            'the order’s workflow took this change and was stopped before it answered: it may or may not show in the order, and a payment or refund it started may have been sent; the order takes no more changes until an operator looks at it',
          );
        }
        const own = worded?.(err.cause.type ?? '', err.cause.details ?? []);
        if (own) throw own;
        const refusal = REFUSAL_OF_CHANGE[err.cause.type ?? ''];
        if (refusal) throw new Refusal(refusal.kind, refusal.code, err.cause.message);
      }
      if (err instanceof WorkflowNotFoundError) {
        if (order.status !== 'ACTIVE') {
          throw new Refusal(
            'conflict',
            'order_not_active',
            `${orderEndedMessage(order.status)}; its refund and return windows have closed, so it takes no more changes`,
          );
        }
        throw await this.notRunning(handle, order);
      }
      throw err;
    }
  }

  /**
   * Why an ACTIVE order's workflow took no change. Not started yet (the reconciler starts it) is worth
   * a retry; closed without ending the order (an operator terminated it, or it failed, or since deleted
   * by Temporal's retention) is not, and is never started again here: a payment workflow started over
   * could charge twice.
   */
  private async notRunning(handle: WorkflowHandle, order: PaymentOrder): Promise<Refusal> {
    const status = await this.closedStatusOf(handle, order, UPDATE_DEADLINE_MS);
    if (status) {
      return new Refusal(
        'conflict',
        'order_workflow_closed',
        `the order is ACTIVE but its workflow is ${status}; it takes no changes until an operator looks at it`,
      );
    }
    return new Refusal(
      'unavailable',
      'order_not_running',
      'the order’s workflow is not running yet; try again shortly',
    );
  }

  /**
   * Whether an ACTIVE order's workflow has closed (an operator terminated it, or it failed; or it was
   * deleted since by Temporal's retention): it takes no payment, and nothing starts it again. False
   * when Temporal cannot say, or has not started it yet.
   */
  async workflowClosed(order: PaymentOrder): Promise<boolean> {
    if (order.status !== 'ACTIVE') return false;
    const handle = this.deps.temporal.workflow.getHandle(orderWorkflowId(order.tenantId, order.orderRef));
    // A look before a form is offered, not an answer: a Temporal slow to say leaves the form, whose
    // payment the workflow takes or refuses itself.
    return (await this.closedStatusOf(handle, order, CLOSED_LOOK_DEADLINE_MS)) !== undefined;
  }

  /**
   * The workflow's status as Temporal names it when it has closed, or DELETED_AFTER_CLOSING when the
   * order was last known alive (started, or projected since) longer ago than Temporal keeps a closed run
   * and it has none; undefined while it runs (or is paused), when it is not started yet, or when
   * Temporal does not answer within `deadlineMs`.
   */
  private closedStatusOf(handle: WorkflowHandle, order: PaymentOrder, deadlineMs: number): Promise<string | undefined> {
    const deadline = Date.now() + deadlineMs;
    return this.deps.temporal.connection
      .withDeadline(deadline, () => handle.describe())
      .then((description) => (CLOSED_STATUSES.has(description.status.name) ? description.status.name : undefined))
      .catch(async (err: unknown) =>
        err instanceof WorkflowNotFoundError && (await this.deletedByRetention(order, deadline))
          ? DELETED_AFTER_CLOSING
          : undefined,
      );
  }

  /**
   * Whether an order whose workflow is not found had it deleted by Temporal's retention: last known
   * alive (started, or projected since) longer ago than the namespace keeps a closed run. Sooner, it is
   * not so (Temporal's data lost, or another namespace), and stays a 503. This is a bound, not a proof:
   * an order sleeping since its last projection for longer than the retention, whose Temporal data is
   * then lost, is taken as deleted too (ARCHITECTURE.md says so).
   */
  private async deletedByRetention(order: PaymentOrder, deadline: number): Promise<boolean> {
    if (!order.workflowStartedAt) return false;
    const lastAlive = Math.max(order.workflowStartedAt.getTime(), order.updatedAt.getTime());
    const retentionMs = await this.retentionMs(deadline);
    return retentionMs !== undefined && Date.now() - lastAlive > retentionMs;
  }

  /** The namespace's retention of closed runs, asked at most every RETENTION_KEPT_MS; the last known while it cannot be asked. */
  private async retentionMs(deadline: number): Promise<number | undefined> {
    const known = this.retention;
    if (known && Date.now() - known.askedAt < RETENTION_KEPT_MS) return known.ms;
    const { temporal } = this.deps;
    try {
      const { config } = await temporal.connection.withDeadline(deadline, () =>
        temporal.workflowService.describeNamespace({ namespace: temporal.options.namespace }),
      );
      const ms = optionalTsToMs(config?.workflowExecutionRetentionTtl);
      if (ms === undefined) return known?.ms;
      this.retention = { ms, askedAt: Date.now() };
      return ms;
    } catch {
      return known?.ms;
    }
  }

  /**
   * An admin's resolution, its audit entry written before it is sent, so that no resolution goes
   * unaudited whatever fails after it. The entry then says what came of it: `result` `applied`, or
   * `refused` with the refusal's code. One left `requested` was sent and its answer not recorded (the
   * update timed out, or the database failed after it); the order says whether it was taken. Its
   * `updateId` (the Idempotency-Key's) ties a retry's entry to the try before. The entry commits on its
   * own, whatever transaction the request holds: a refusal rolls back nothing of it.
   */
  private async audited<T>(
    actor: Principal,
    change: AuditedChange & { details: Record<string, unknown> },
    updateId: UpdateId,
    resolve: () => Promise<T>,
  ): Promise<T> {
    const em = this.deps.orm.em.fork();
    const details = { ...change.details, updateId: updateId ?? null };
    const entry = recordAudit(em, actor, { ...change, details: { ...details, result: 'requested' } });
    await em.flush();
    let resolved: T;
    try {
      resolved = await resolve();
    } catch (err) {
      // Taken and stopped before it answered: `requested` (sent, its answer unknown) stays true.
      if (err instanceof Refusal && err.code !== CLOSED_DURING_CHANGE) {
        entry.details = { ...details, result: 'refused', refusal: err.code };
        // The refusal is the answer: a failure to note it leaves the entry `requested`, which is true.
        await em.flush().catch(() => undefined);
      }
      throw err;
    }
    entry.details = { ...details, result: 'applied' };
    await em.flush();
    return resolved;
  }

  /** The order as the read model shows it once a change has been taken (the workflow projected it). */
  private async reread(em: EntityManager, order: PaymentOrder): Promise<StoredOrder> {
    em.clear();
    return this.withInstructions(em, await em.findOneOrFail(PaymentOrder, { id: order.id }));
  }

  private async withInstructions(em: EntityManager, order: PaymentOrder): Promise<StoredOrder> {
    // A query of its own: joined, each of up to 500 instruction rows would repeat the order's columns.
    const instructions = await em.find(
      PaymentInstruction,
      { order: order.id, tenantId: order.tenantId },
      { orderBy: { position: 'asc' } },
    );
    return { order, instructions };
  }
}

/** Instructions per status for each order of a page: one grouped query, at most 100 orders × 7 statuses rows. */
async function instructionCounts(em: EntityManager, tenantId: string, orderIds: string[]) {
  const counts = new Map<string, Partial<Record<InstructionStatus, number>>>();
  if (orderIds.length === 0) return counts;
  // In the request's transaction (its snapshot, for a page read as one), not on a connection of its own.
  const rows: { order_id: string; status: InstructionStatus; count: string }[] = await em.execute(
    'select order_id, status, count(*) as count from payment_instruction where tenant_id = ? and order_id in (?) group by order_id, status',
    [tenantId, orderIds],
  );
  for (const row of rows) counts.set(row.order_id, { ...counts.get(row.order_id), [row.status]: Number(row.count) });
  return counts;
}

function refundTooLarge(left: bigint, currency: string): Refusal {
  const message = `at most ${formatAmount(left, currency)} ${currency} can still be refunded`;
  return new Refusal('conflict', 'refund_exceeds_refundable', message, [
    { path: 'amount', code: 'exceeds_refundable', message },
  ]);
}

/**
 * The refund a request names: the update's id holds the request (key, path and body), so the same
 * request always names the same refund.
 */
export function refundIdOf(tenantId: string, updateId: string): string {
  return uuidFrom(`${tenantId}:${updateId}`);
}

/** A UUID named by `name` (its SHA-256, shaped as a version 8 UUID). */
function uuidFrom(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** An instruction's plan as its read-model row holds it (what a change is computed against). */
function planOfRow(row: PaymentInstruction): InstructionPlan {
  return planOf(instructionFromRow(row));
}
