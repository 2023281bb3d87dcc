import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { AppConnector } from '../../apps/app-connector.js';
import { PaymentInstruction, ProviderCallback } from '../../db/entities/index.js';
import { loadInstalledApp } from '../../db/installed-apps.js';
import type { SecretBox } from '../../db/secret-box.js';
import { orderWorkflowId } from '../contract/ids.js';
import { providerResultSignal } from '../contract/messages.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { z } from '../../api/http/zod.js';
import { AppIdParamsSchema } from '../../api/marketplace/schemas.js';

export interface ProviderRouteDeps {
  orm: MikroORM;
  temporal: Client;
  secretBox: SecretBox;
  apps: Map<string, AppConnector>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const CallbackAnswerSchema = z
  .object({
    received: z.literal(true),
    duplicate: z.boolean().openapi({ description: 'This result had been received before' }),
  })
  .openapi('CallbackReceived');

const badSignature = () => new ApiError(401, 'invalid_signature', 'the callback’s signature does not verify');

/**
 * Asynchronous results from providers (a bank debit settling days later). The body names the
 * tenant's payment; the signature must verify with that tenant's installation of the app, or the
 * callback is refused and changes nothing. A verified result is stored once per payment and
 * outcome, then handed to the order's workflow as a signal; if Temporal cannot take it, the answer
 * is a 503 so that the provider tries again, and the stored row is delivered then.
 */
export function addProviderRoutes(routes: RouteTable, { orm, temporal, secretBox, apps }: ProviderRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/providers/:appId/callbacks',
    scope: 'public',
    roles: [],
    summary: 'A provider’s signed asynchronous result',
    description:
      'Called by providers, not by tenants. SANDBOX_BANK signs with `sandbox-signature`; HTTP_CONNECTOR with the Standard Webhooks ' +
      'headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). A bad signature is a 401 and changes nothing.',
    tags: ['Providers'],
    params: AppIdParamsSchema,
    body: z.record(z.string(), z.unknown()).openapi({ description: 'As the app’s provider sends it' }),
    responses: { 202: { description: 'Received, and handed to the order’s workflow', schema: CallbackAnswerSchema } },
    problems: [404, 503],
    handler: async ({ params, req, em, afterCommit }) => {
      const connector = apps.get(params.appId);
      if (!connector?.callbackReference || !connector.verifyCallback)
        throw new ApiError(404, 'app_not_found', `${params.appId} takes no callbacks`);
      const rawBody = (req as { rawBody?: string }).rawBody ?? '';
      const reference = connector.callbackReference(rawBody);
      if (!reference || !UUID.test(reference.tenantId)) throw badSignature();
      const installation = await loadInstalledApp(em, secretBox, reference.tenantId, params.appId);
      // An app the tenant does not have and a wrong signature look the same to the caller.
      const result = installation
        ? connector.verifyCallback(rawBody, req.headers as Record<string, string | undefined>, installation)
        : undefined;
      if (!result || result.providerRef !== reference.providerRef) throw badSignature();

      const { tenantId, orderRef, instructionRef } = reference;
      const instruction = await em.findOne(PaymentInstruction, { tenantId, instructionRef, order: { orderRef } });
      if (!instruction) throw new ApiError(404, 'payment_not_found', 'no such payment of this tenant');

      const stored: { id: string; delivered_at: Date | null }[] = await em.getConnection().execute(
        `insert into provider_callback (id, tenant_id, app_id, provider_ref, status, order_ref, instruction_ref, payload, received_at)
         values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, now())
         on conflict (tenant_id, app_id, provider_ref, status) do update set app_id = excluded.app_id
         returning id, delivered_at`,
        [randomUUID(), tenantId, params.appId, result.providerRef, result.status, orderRef, instructionRef, rawBody],
        'all',
        em.getTransactionContext(),
      );
      const [{ id, delivered_at: deliveredAt }] = stored;
      if (deliveredAt) return { status: 202, body: { received: true, duplicate: true } };

      afterCommit(async () => {
        try {
          await temporal.workflow.getHandle(orderWorkflowId(tenantId, orderRef)).signal(providerResultSignal, result);
        } catch (err) {
          // The order has finished: nothing is waiting for this result, and nothing will. It is kept, and answered.
          if (err instanceof WorkflowNotFoundError) {
            req.log.info({ tenantId, orderRef, instructionRef }, 'a provider result arrived for a finished order');
            await orm.em.fork().nativeUpdate(ProviderCallback, { id }, { deliveredAt: new Date() });
            return;
          }
          req.log.warn(
            { err, tenantId, orderRef, instructionRef },
            'could not hand a provider result to its workflow yet',
          );
          throw new ApiError(
            503,
            'workflow_unavailable',
            'the result is stored but could not be handed on yet; send it again',
            undefined,
            { 'retry-after': '5' },
          );
        }
        await orm.em.fork().nativeUpdate(ProviderCallback, { id }, { deliveredAt: new Date() });
      });
      return { status: 202, body: { received: true, duplicate: false } };
    },
  });
}
