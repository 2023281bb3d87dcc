import { EntitySchema } from '@mikro-orm/core';

/**
 * An asynchronous result a provider POSTed, after its signature was verified: kept as it was
 * checked (`payload`: the result taken, never the body as sent), and marked delivered once its
 * order's workflow has it. One row per tenant, payment and outcome, so a provider repeating a
 * callback changes nothing.
 */
export class ProviderCallback {
  id!: string;
  tenantId!: string;
  appId!: string;
  providerRef!: string;
  status!: string;
  orderRef!: string;
  instructionRef!: string;
  payload!: Record<string, unknown>;
  receivedAt: Date = new Date();
  deliveredAt?: Date | null;
}

export const ProviderCallbackSchema = new EntitySchema<ProviderCallback>({
  class: ProviderCallback,
  tableName: 'provider_callback',
  // Per tenant: a tenant's own provider (HTTP_CONNECTOR) numbers its payments as it likes.
  uniques: [{ properties: ['tenantId', 'appId', 'providerRef', 'status'], name: 'provider_callback_outcome_unique' }],
  indexes: [
    { properties: ['tenantId', 'orderRef'] },
    // What is still to be handed on (orders/provider-results.ts `deliverStored`).
    {
      name: 'provider_callback_undelivered_index',
      expression:
        'CREATE INDEX provider_callback_undelivered_index ON public.provider_callback USING btree (received_at) WHERE (delivered_at IS NULL)',
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid' },
    appId: { type: 'string', length: 64 },
    providerRef: { type: 'string', length: 128 },
    status: { type: 'string', length: 16 },
    orderRef: { type: 'string', length: 50 },
    instructionRef: { type: 'string', length: 50 },
    payload: { type: 'json' },
    receivedAt: { type: 'datetime' },
    deliveredAt: { type: 'datetime', nullable: true },
  },
});
