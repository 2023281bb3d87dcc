import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { CallbackReference, CallbackResult } from '../apps/app-connector.js';
import { otherMoneyThanAsked } from '../apps/provider-answer.js';
import { PaymentInstruction, PaymentRefund, ProviderCallback } from '../db/entities/index.js';
import { isAtRest } from '../domain/instruction-status.js';
import type { StatedAmount } from '../domain/payment-outcome.js';
import { Refusal } from '../domain/refusal.js';
import { orderWorkflowId } from './contract/ids.js';
import {
  orderStateQuery,
  providerResultSignal,
  refundResultSignal,
  replacedSecretReturnUpdate,
} from './contract/messages.js';

/** How long a callback waits for the order's workflow to say which payment it has in flight, or to take a return. */
const WORKFLOW_DEADLINE_MS = 5_000;
/**
 * Results stored but not handed on are handed on again (`deliverStored`) once this old: the API's
 * own hand-over, and the provider's sending again after a refusal, come first.
 */
export const REDELIVERY_AFTER_MS = 2 * 60_000;
/** Results older than this are left to an operator (`delivered_at is null`): one handed on so late would surprise. */
export const REDELIVERY_DAYS = 7;
/** Results handed on again at a time. */
const REDELIVERY_PAGE = 100;
/** A result that could not be handed on again waits before the next try: a minute, doubling, at most this. */
const REDELIVERY_BACKOFF_MAX_MS = 60 * 60_000;
/** The most results a process keeps waiting (the oldest let go first, so tried again at once). */
const REDELIVERY_BACKOFF_KEPT = 1_000;

export interface ProviderResultDependencies {
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
}

/**
 * A provider's asynchronous result for one of the tenant's payments (a bank debit settling days
 * later), once its callback's signature has been verified: stored once per payment and outcome,
 * then handed to the order's workflow as a signal (a return taken under a replaced secret, as an
 * update). If Temporal cannot take it, the refusal tells the provider to send it again, and the
 * stored row is handed on then, or by a worker's `deliverStored`, whichever comes first.
 */
export class ProviderResults {
  /**
   * Stored results `deliverStored` could not hand on, each with its failed tries and when it may be
   * tried again: those that keep failing (a worker refusing, a workflow stuck) neither hold the
   * oldest places of every round nor log each minute.
   */
  private readonly waiting = new Map<string, { tries: number; until: number }>();

  constructor(private readonly deps: ProviderResultDependencies) {}

  /** Stores the result on `em` (the caller's transaction); `delivered` when it had been handed on before. */
  async record(
    em: EntityManager,
    appId: string,
    { tenantId, orderRef, instructionRef }: CallbackReference,
    { kind, result }: CallbackResult,
  ): Promise<{ id: string; delivered: boolean }> {
    const instruction = await em.findOne(PaymentInstruction, { tenantId, instructionRef, order: { orderRef } });
    // A callback speaks only for its own payment (or refund): one of this app, under this reference.
    // Anything else looks exactly like a payment that does not exist, and changes nothing.
    const asked =
      instruction &&
      (kind === 'payment'
        ? await this.paymentAsked(instruction, orderRef, appId, result.providerRef)
        : await this.refundAsked(em, instruction, orderRef, appId, result.providerRef));
    if (!asked) throw new Refusal('not_found', 'payment_not_found', 'no such payment of this tenant');
    if (otherMoneyThanAsked(result, asked, appId)) {
      throw new Refusal(
        'invalid',
        'amount_mismatch',
        `a ${kind === 'payment' ? 'settlement' : 'refund'} of other money than the ${asked.amountMinor} ${asked.currency} (minor units) asked is not taken`,
      );
    }
    const [stored]: { id: string; delivered_at: Date | null }[] = await em.getConnection().execute(
      `insert into provider_callback (id, tenant_id, app_id, provider_ref, status, order_ref, instruction_ref, payload, received_at)
       values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, now())
       on conflict (tenant_id, app_id, provider_ref, status) do update set app_id = excluded.app_id
       returning id, delivered_at`,
      // What was checked, not the body as sent: a provider may send back more than we asked for
      // (the token it charged, the card it saw), and nothing of it is kept.
      [
        randomUUID(),
        tenantId,
        appId,
        result.providerRef,
        result.status,
        orderRef,
        instructionRef,
        JSON.stringify({ kind, result }),
      ],
      'all',
      em.getTransactionContext(),
    );
    return { id: stored.id, delivered: stored.delivered_at !== null };
  }

  /**
   * What the payment asked for, if the instruction is paid through `appId` and its current payment is
   * `providerRef`: as the read model shows it, or, when that may lag behind (a payment just made, an
   * app just amended), as its workflow knows it. Its payment cannot be amended while under way: the
   * instruction's amount is what was asked.
   */
  private async paymentAsked(
    instruction: PaymentInstruction,
    orderRef: string,
    appId: string,
    providerRef: string,
  ): Promise<StatedAmount | undefined> {
    if (instruction.appId === appId && instruction.providerRef === providerRef) {
      return { amountMinor: instruction.amountMinor.toString(), currency: instruction.currency };
    }
    if (isAtRest(instruction.status)) return undefined;
    // The read model lags: its amount may be from before an amendment the workflow has taken.
    const view = await this.liveView(instruction.tenantId, orderRef);
    const live = view.instructions.find((i) => i.instructionRef === instruction.instructionRef);
    if (live?.appId !== appId || live.providerRef !== providerRef) return undefined;
    return { amountMinor: live.amountMinor, currency: live.currency };
  }

  /**
   * What the refund asked for, if `providerRef` is a refund of the instruction through `appId`, the app
   * that took the payment it refunds (or, for a refund from before that was kept, the instruction's
   * app): as the read model shows it, or, for a refund it does not show yet or whose reference it
   * lacks, as its workflow knows it.
   */
  private async refundAsked(
    em: EntityManager,
    instruction: PaymentInstruction,
    orderRef: string,
    appId: string,
    providerRef: string,
  ): Promise<StatedAmount | undefined> {
    const refunds = await em.find(
      PaymentRefund,
      { tenantId: instruction.tenantId, instructionId: instruction.instructionId },
      { fields: ['refundId', 'providerRef', 'appId', 'status', 'amountMinor', 'currency'] },
    );
    const through = (refund: { appId?: string | null }) => (refund.appId ?? instruction.appId) === appId;
    const stored = refunds.find((r) => r.providerRef === providerRef && through(r));
    if (stored) return { amountMinor: stored.amountMinor.toString(), currency: stored.currency };
    if (instruction.appId !== appId && !refunds.some((r) => r.status === 'PENDING' && through(r))) return undefined;
    const view = await this.liveView(instruction.tenantId, orderRef);
    const live = (view.refunds ?? []).find(
      (r) =>
        r.instructionRef === instruction.instructionRef &&
        r.providerRef === providerRef &&
        (r.appId ?? instruction.appId) === appId,
    );
    if (!live) return undefined;
    // A worker of before the view showed a refund's money: its row has it, once projected.
    const row = refunds.find((r) => r.refundId === live.refundId);
    const amountMinor = live.amountMinor ?? row?.amountMinor.toString();
    const currency = live.currency ?? row?.currency;
    if (amountMinor === undefined || currency === undefined) {
      throw new Refusal('unavailable', 'workflow_unavailable', 'the refund cannot be checked just now; send it again');
    }
    return { amountMinor, currency };
  }

  private async liveView(tenantId: string, orderRef: string) {
    const handle = this.deps.temporal.workflow.getHandle(orderWorkflowId(tenantId, orderRef));
    try {
      return await this.deps.temporal.connection.withDeadline(Date.now() + WORKFLOW_DEADLINE_MS, () =>
        handle.query(orderStateQuery),
      );
    } catch (err) {
      // The provider is told to send it again; why the workflow did not answer is ours to know (a
      // Temporal away, or a workflow that cannot run its code since a deploy).
      this.deps.logger.warn(
        { tenantId, orderRef, error: (err as Error).name, reason: (err as Error).message },
        'a callback could not be checked against its order’s workflow',
      );
      throw new Refusal('unavailable', 'workflow_unavailable', 'the payment cannot be checked just now; send it again');
    }
  }

  /** Hands a stored result to its order's workflow, once its row has committed. */
  async deliver(
    id: string,
    appId: string,
    reference: CallbackReference,
    { kind, result }: CallbackResult,
    log: Logger,
  ): Promise<void> {
    const { tenantId, orderRef, instructionRef } = reference;
    try {
      const handle = this.deps.temporal.workflow.getHandle(orderWorkflowId(tenantId, orderRef));
      if (kind === 'refund') await handle.signal(refundResultSignal, { ...result, appId });
      else if (!(result.status === 'RETURNED' && result.underReplacedSecret))
        await handle.signal(providerResultSignal, { ...result, appId });
      else {
        // Taken by the workflow before it is answered: one of a worker that cannot read the mark refuses it.
        await this.deps.temporal.connection.withDeadline(Date.now() + WORKFLOW_DEADLINE_MS, () =>
          handle.executeUpdate(replacedSecretReturnUpdate, {
            args: [{ ...result, appId }],
            updateId: `replaced-secret-return:${id}`,
          }),
        );
      }
    } catch (err) {
      // The order has finished: nothing is waiting for this result, and nothing will. It is kept, and answered.
      if (!(err instanceof WorkflowNotFoundError)) {
        log.warn({ err, tenantId, orderRef, instructionRef }, 'could not hand a provider result to its workflow yet');
        throw new Refusal(
          'unavailable',
          'workflow_unavailable',
          'the result is stored but could not be handed on yet; send it again',
        );
      }
      log.info({ tenantId, orderRef, instructionRef }, 'a provider result arrived for a finished order');
    }
    await this.deps.orm.em.fork().nativeUpdate(ProviderCallback, { id }, { deliveredAt: new Date() });
  }

  /**
   * Hands on again, oldest first, results stored but not handed on (Temporal away when they came, a
   * worker of the code before refusing a return's update) that no provider sent again: received
   * more than REDELIVERY_AFTER_MS and less than REDELIVERY_DAYS ago. A workflow takes a result it
   * has already taken as nothing new, and a return's update id is its row's, so two workers doing
   * this at once hand each on twice at worst. Rows stored before they kept the result are not. One
   * that fails waits (a minute, doubling, up to an hour) while newer ones go on.
   */
  async deliverStored(signal?: AbortSignal): Promise<{ delivered: number; failed: number }> {
    const rows: {
      id: string;
      tenant_id: string;
      app_id: string;
      provider_ref: string;
      order_ref: string;
      instruction_ref: string;
      payload: Partial<CallbackResult>;
    }[] = await this.deps.orm.em.getConnection().execute(
      `select id, tenant_id, app_id, provider_ref, order_ref, instruction_ref, payload from provider_callback
        where delivered_at is null and received_at < now() - make_interval(secs => ?)
          and received_at > now() - make_interval(days => ?) and payload -> 'kind' is not null and payload -> 'result' is not null
        order by received_at limit ?`,
      [REDELIVERY_AFTER_MS / 1000, REDELIVERY_DAYS, REDELIVERY_PAGE + this.waiting.size],
    );
    let [delivered, failed] = [0, 0];
    const now = Date.now();
    for (const row of rows.filter((r) => (this.waiting.get(r.id)?.until ?? 0) <= now).slice(0, REDELIVERY_PAGE)) {
      if (signal?.aborted) break;
      const { kind, result } = row.payload;
      if (!kind || !result) continue;
      const reference = {
        tenantId: row.tenant_id,
        orderRef: row.order_ref,
        instructionRef: row.instruction_ref,
        providerRef: row.provider_ref,
      };
      const log = this.deps.logger.child({ tenantId: row.tenant_id, orderRef: row.order_ref, callbackId: row.id });
      try {
        await this.deliver(row.id, row.app_id, reference, { kind, result } as CallbackResult, log);
        this.waiting.delete(row.id);
        delivered += 1;
      } catch (err) {
        // `deliver` said why.
        if (!(err instanceof Refusal)) throw err;
        this.waitBeforeTrying(row.id);
        failed += 1;
      }
    }
    if (delivered > 0) this.deps.logger.info({ delivered }, 'handed on provider results stored but not handed on');
    return { delivered, failed };
  }

  private waitBeforeTrying(id: string): void {
    const tries = (this.waiting.get(id)?.tries ?? 0) + 1;
    this.waiting.delete(id);
    this.waiting.set(id, { tries, until: Date.now() + Math.min(REDELIVERY_BACKOFF_MAX_MS, 60_000 * 2 ** (tries - 1)) });
    if (this.waiting.size > REDELIVERY_BACKOFF_KEPT) this.waiting.delete(this.waiting.keys().next().value!);
  }
}
