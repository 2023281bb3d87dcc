import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { CallbackReference } from '../apps/app-connector.js';
import { PaymentInstruction, ProviderCallback } from '../db/entities/index.js';
import type { ProviderResult } from '../domain/payment-outcome.js';
import { Refusal } from '../domain/refusal.js';
import { orderWorkflowId } from './contract/ids.js';
import { providerResultSignal } from './contract/messages.js';

export interface ProviderResultDependencies {
  orm: MikroORM;
  temporal: Client;
}

/**
 * A provider's asynchronous result for one of the tenant's payments (a bank debit settling days
 * later), once its callback's signature has been verified: stored once per payment and outcome,
 * then handed to the order's workflow as a signal. If Temporal cannot take it, the refusal tells
 * the provider to send it again, and the stored row is handed on then.
 */
export class ProviderResults {
  constructor(private readonly deps: ProviderResultDependencies) {}

  /** Stores the result on `em` (the caller's transaction); `delivered` when it had been handed on before. */
  async record(
    em: EntityManager,
    appId: string,
    { tenantId, orderRef, instructionRef }: CallbackReference,
    result: ProviderResult,
    rawBody: string,
  ): Promise<{ id: string; delivered: boolean }> {
    const instruction = await em.findOne(PaymentInstruction, { tenantId, instructionRef, order: { orderRef } });
    if (!instruction) throw new Refusal('not_found', 'payment_not_found', 'no such payment of this tenant');
    const [stored]: { id: string; delivered_at: Date | null }[] = await em.getConnection().execute(
      `insert into provider_callback (id, tenant_id, app_id, provider_ref, status, order_ref, instruction_ref, payload, received_at)
       values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, now())
       on conflict (tenant_id, app_id, provider_ref, status) do update set app_id = excluded.app_id
       returning id, delivered_at`,
      [randomUUID(), tenantId, appId, result.providerRef, result.status, orderRef, instructionRef, rawBody],
      'all',
      em.getTransactionContext(),
    );
    return { id: stored.id, delivered: stored.delivered_at !== null };
  }

  /** Hands a stored result to its order's workflow, once its row has committed. */
  async deliver(id: string, reference: CallbackReference, result: ProviderResult, log: Logger): Promise<void> {
    const { tenantId, orderRef, instructionRef } = reference;
    try {
      await this.deps.temporal.workflow
        .getHandle(orderWorkflowId(tenantId, orderRef))
        .signal(providerResultSignal, result);
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
}
