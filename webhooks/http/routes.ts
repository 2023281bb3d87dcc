import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager, FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { resolvedUrlProblem } from '../../apps/outbound-guard.js';
import { OrderEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '../../db/entities/index.js';
import { lockTenantRow } from '../../db/tenant-lock.js';
import { sealedContext } from '../../db/sealed-columns.js';
import type { SecretBox } from '../../db/secret-box.js';
import { outboundUrlProblem, type OutboundUrlPolicy } from '../../domain/outbound-url.js';
import { endpointTakes } from '../outbox.js';
import { startDeliveries } from '../start-deliveries.js';
import { recordAudit } from '../../api/audit/record-audit.js';
import { PageQuerySchema } from '../../api/http/common-schemas.js';
import { findPage } from '../../api/http/pagination.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { auditedUrl } from '../../domain/outbound-url.js';
import { presentDelivery, presentEndpoint, presentEvent } from './presenter.js';
import {
  CreateEndpointSchema,
  DeliveryIdParamsSchema,
  DeliveryListSchema,
  DeliveryQuerySchema,
  DeliverySchema,
  EndpointIdParamsSchema,
  EndpointListSchema,
  EndpointSchema,
  EndpointWithSecretSchema,
  EventListSchema,
  EventQuerySchema,
  RecoveredSchema,
  RecoverSchema,
  RotateSecretSchema,
  UpdateEndpointSchema,
} from './schemas.js';

export interface WebhookRouteDeps {
  orm: MikroORM;
  temporal: Client;
  secretBox: SecretBox;
  outboundUrls: OutboundUrlPolicy;
}

/** Every event is fanned out to each of a tenant's endpoints inside its order's projection. */
const MAX_ENDPOINTS_PER_TENANT = 20;
/** The most deliveries one recovery re-sends (the oldest); calling again goes on from there. */
const MAX_RECOVERED = 1000;

// What a recovery re-sends: the latest failed delivery of each event to the endpoint since a time,
// of a type the endpoint still takes, unless the endpoint has since received that event or it is
// still being sent (a replay that succeeded, an earlier recovery under way), oldest first.
const RECOVERABLE = `
  select id from (
    select distinct on (d.event_id) d.id, d.created_at
    from webhook_delivery d
    join webhook_endpoint e on e.id = d.endpoint_id
    where d.tenant_id = ? and d.endpoint_id = ? and d.status = 'FAILED' and d.created_at >= ?
      and ${endpointTakes('e', 'd.event_type')}
      and not exists (
        select 1 from webhook_delivery o
        where o.endpoint_id = d.endpoint_id and o.event_id = d.event_id and o.status in ('PENDING', 'SUCCEEDED'))
    order by d.event_id, d.created_at desc
  ) latest
  order by created_at, id
  limit ?`;

/** A Standard Webhooks secret: whsec_ and 32 random bytes in base64. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * Webhooks (ARCHITECTURE.md, "Webhooks"): the tenant's endpoints, the log of every delivery and
 * attempt, replays, and the event log. Secrets are shown when made or rotated, never again.
 */
export function addWebhookRoutes(
  routes: RouteTable,
  { orm, temporal, secretBox, outboundUrls }: WebhookRouteDeps,
): void {
  /**
   * The tenant's endpoint; `locked` holds its row until the request commits, for a change that reads
   * it to decide (two rotations, or two recoveries, at once: the second waits and sees the first).
   * `for no key update`, not `for update`: the events recorded meanwhile insert deliveries that refer
   * to the row (a foreign key's share lock), and must not wait for a recovery of 1,000.
   */
  async function findEndpoint(
    em: EntityManager,
    tenantId: string,
    endpointId: string,
    locked = false,
  ): Promise<WebhookEndpoint> {
    if (locked) {
      await em
        .getConnection()
        .execute(
          'select 1 from webhook_endpoint where id = ? and tenant_id = ? for no key update',
          [endpointId, tenantId],
          'all',
          em.getTransactionContext(),
        );
    }
    const endpoint = await em.findOne(WebhookEndpoint, { id: endpointId, tenantId });
    if (!endpoint) throw new ApiError(404, 'endpoint_not_found', `no webhook endpoint ${endpointId}`);
    return endpoint;
  }

  /** https to a public address, also once resolved (or loopback in local development); checked before the transaction opens. */
  async function checkUrl(url: string): Promise<void> {
    const problem = outboundUrlProblem(url, outboundUrls) ?? (await resolvedUrlProblem(url, outboundUrls));
    if (problem)
      throw new ApiError(400, 'validation_failed', '1 field failed validation', [
        { path: 'url', code: 'url_not_allowed', message: problem },
      ]);
  }

  async function withAttempts(em: EntityManager, deliveries: WebhookDelivery[]) {
    const attempts = deliveries.length
      ? await em.find(WebhookAttempt, { deliveryId: { $in: deliveries.map((d) => d.id) } })
      : [];
    return deliveries.map((d) =>
      presentDelivery(
        d,
        attempts.filter((a) => a.deliveryId === d.id),
      ),
    );
  }

  /** New deliveries repeating `originals`, started once the transaction commits. */
  function resend(
    em: EntityManager,
    originals: WebhookDelivery[],
    afterCommit: (step: () => Promise<void>) => void,
  ): WebhookDelivery[] {
    const copies = originals.map((original) =>
      em.create(WebhookDelivery, {
        id: randomUUID(),
        tenantId: original.tenantId,
        endpointId: original.endpointId,
        eventId: original.eventId,
        eventType: original.eventType,
        status: 'PENDING',
        attempts: 0,
        replayOf: original.replayOf ?? original.id,
        createdAt: new Date(),
        updatedAt: new Date(),
      }),
    );
    // Left unstarted if Temporal does not answer: the worker's dispatcher starts it.
    afterCommit(
      async () =>
        void (await startDeliveries(
          temporal,
          orm,
          copies.map((c) => c.id),
        )),
    );
    return copies;
  }

  routes.add({
    method: 'post',
    path: '/webhooks/endpoints',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Add a webhook endpoint',
    description: 'The answer holds the signing secret (whsec_…), shown this once.',
    tags: ['Webhooks'],
    body: CreateEndpointSchema,
    responses: { 201: { description: 'The endpoint, with its secret', schema: EndpointWithSecretSchema } },
    problems: [409],
    precheck: ({ body }) => checkUrl(body.url),
    handler: async ({ body, em, context: { tenantId, principal } }) => {
      // Each event is fanned out to every endpoint inside the order's projection: the count is kept small.
      await lockTenantRow(em, tenantId);
      if ((await em.count(WebhookEndpoint, { tenantId })) >= MAX_ENDPOINTS_PER_TENANT) {
        throw new ApiError(
          409,
          'too_many_endpoints',
          `a tenant has at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints`,
        );
      }
      const id = randomUUID();
      const secret = newSecret();
      const endpoint = em.create(WebhookEndpoint, {
        id,
        tenantId,
        url: body.url,
        eventTypes: body.eventTypes,
        enabled: body.enabled,
        description: body.description ?? null,
        secretCiphertext: secretBox.seal(secret, sealedContext('webhook_endpoint', id)),
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      recordAudit(em, principal, {
        action: 'webhook-endpoint.create',
        targetType: 'webhook-endpoint',
        targetId: id,
        details: { url: auditedUrl(body.url), eventTypes: body.eventTypes },
      });
      return { status: 201, body: { ...presentEndpoint(endpoint), secret } };
    },
  });

  routes.add({
    method: 'get',
    path: '/webhooks/endpoints',
    scope: 'tenant',
    roles: ['tenant-webhook-read'],
    summary: 'List webhook endpoints, newest first',
    tags: ['Webhooks'],
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of endpoints', schema: EndpointListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await findPage(em, WebhookEndpoint, { tenantId }, query, 'id');
      return { status: 200, body: { items: page.items.map(presentEndpoint), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/webhooks/endpoints/:endpointId',
    scope: 'tenant',
    roles: ['tenant-webhook-read'],
    summary: 'Get a webhook endpoint',
    tags: ['Webhooks'],
    params: EndpointIdParamsSchema,
    responses: { 200: { description: 'The endpoint', schema: EndpointSchema } },
    handler: async ({ params, em, context: { tenantId } }) => ({
      status: 200,
      body: presentEndpoint(await findEndpoint(em, tenantId, params.endpointId)),
    }),
  });

  routes.add({
    method: 'patch',
    path: '/webhooks/endpoints/:endpointId',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Change a webhook endpoint: URL, event types, enabled, description',
    tags: ['Webhooks'],
    params: EndpointIdParamsSchema,
    body: UpdateEndpointSchema,
    responses: { 200: { description: 'The endpoint', schema: EndpointSchema } },
    precheck: async ({ params, body, em, context: { tenantId } }) => {
      if (body.url === undefined) return;
      await findEndpoint(em, tenantId, params.endpointId); // another tenant's endpoint is a 404 first
      await checkUrl(body.url);
    },
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const endpoint = await findEndpoint(em, tenantId, params.endpointId);
      // Failures at the URL it leaves say nothing of the new one: its five days start again.
      if (body.url !== undefined && body.url !== endpoint.url)
        Object.assign(endpoint, { url: body.url, failingSince: null });
      if (body.eventTypes !== undefined) endpoint.eventTypes = body.eventTypes;
      if (body.description !== undefined) endpoint.description = body.description;
      if (body.enabled !== undefined) {
        endpoint.enabled = body.enabled;
        if (body.enabled) Object.assign(endpoint, { disabledReason: null, failingSince: null });
      }
      endpoint.updatedAt = new Date();
      recordAudit(em, principal, {
        action: 'webhook-endpoint.update',
        targetType: 'webhook-endpoint',
        targetId: endpoint.id,
        details: { ...body, ...(body.url === undefined ? {} : { url: auditedUrl(body.url) }) },
      });
      await em.flush();
      return { status: 200, body: presentEndpoint(endpoint) };
    },
  });

  routes.add({
    method: 'delete',
    path: '/webhooks/endpoints/:endpointId',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Delete a webhook endpoint, with its delivery log',
    tags: ['Webhooks'],
    params: EndpointIdParamsSchema,
    responses: { 204: { description: 'Deleted' } },
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      const endpoint = await findEndpoint(em, tenantId, params.endpointId);
      em.remove(endpoint);
      recordAudit(em, principal, {
        action: 'webhook-endpoint.delete',
        targetType: 'webhook-endpoint',
        targetId: endpoint.id,
        details: { url: auditedUrl(endpoint.url) },
      });
      return { status: 204 };
    },
  });

  routes.add({
    method: 'post',
    path: '/webhooks/endpoints/:endpointId/rotate-secret',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Rotate an endpoint’s signing secret',
    description:
      'The answer holds the new secret, shown this once. Until the grace period ends deliveries carry both signatures.',
    tags: ['Webhooks'],
    params: EndpointIdParamsSchema,
    body: RotateSecretSchema,
    bodyMayBeLeftOut: true,
    responses: { 200: { description: 'The endpoint, with its new secret', schema: EndpointWithSecretSchema } },
    problems: [409],
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const endpoint = await findEndpoint(em, tenantId, params.endpointId, true);
      const graceUntil = endpoint.previousSecretCiphertext ? endpoint.previousSecretExpiresAt : null;
      if (body.graceSeconds > 0 && graceUntil && graceUntil > new Date()) {
        // A second rotation would silently cut off receivers still holding the first secret.
        throw new ApiError(
          409,
          'rotation_in_progress',
          `the previous secret stays valid until ${graceUntil.toISOString()}; rotate with graceSeconds 0 to replace both now`,
        );
      }
      const secret = newSecret();
      endpoint.previousSecretCiphertext = body.graceSeconds > 0 ? endpoint.secretCiphertext : null;
      endpoint.previousSecretExpiresAt = body.graceSeconds > 0 ? new Date(Date.now() + body.graceSeconds * 1000) : null;
      endpoint.secretCiphertext = secretBox.seal(secret, sealedContext('webhook_endpoint', endpoint.id));
      endpoint.updatedAt = new Date();
      recordAudit(em, principal, {
        action: 'webhook-endpoint.rotate-secret',
        targetType: 'webhook-endpoint',
        targetId: endpoint.id,
        details: { graceSeconds: body.graceSeconds },
      });
      await em.flush();
      return { status: 200, body: { ...presentEndpoint(endpoint), secret } };
    },
  });

  routes.add({
    method: 'post',
    path: '/webhooks/endpoints/:endpointId/recover',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Send again, once each, the events whose delivery to an endpoint failed since a time',
    description:
      'Skips events the endpoint has since received or is still being sent, and types it no longer takes; at most 1,000 a call (the oldest), so calling again goes on from there. Events recorded while the endpoint was disabled had no delivery to it and are not sent: the event log (GET /v1/events) has them.',
    tags: ['Webhooks'],
    params: EndpointIdParamsSchema,
    body: RecoverSchema,
    responses: { 202: { description: 'The new deliveries, under way', schema: RecoveredSchema } },
    problems: [409],
    handler: async ({ params, body, em, afterCommit, context: { tenantId } }) => {
      const endpoint = await findEndpoint(em, tenantId, params.endpointId, true);
      if (!endpoint.enabled) throw new ApiError(409, 'endpoint_disabled', 'enable the endpoint first');
      const rows: { id: string }[] = await em
        .getConnection()
        .execute(
          RECOVERABLE,
          [tenantId, endpoint.id, new Date(body.since), MAX_RECOVERED],
          'all',
          em.getTransactionContext(),
        );
      const toResend = rows.length
        ? await em.find(
            WebhookDelivery,
            { id: { $in: rows.map((r) => r.id) } },
            { orderBy: { createdAt: 'asc', id: 'asc' } },
          )
        : [];
      const copies = resend(em, toResend, afterCommit);
      return { status: 202, body: { deliveries: copies.map((c) => presentDelivery(c, [])) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/webhooks/deliveries',
    scope: 'tenant',
    roles: ['tenant-webhook-read'],
    summary: 'The delivery log, newest first: every attempt with its status code, latency, error and next retry',
    tags: ['Webhooks'],
    query: DeliveryQuerySchema,
    responses: { 200: { description: 'A page of deliveries', schema: DeliveryListSchema } },
    // Each delivery's status and its attempts from one view.
    transactional: 'snapshot',
    handler: async ({ query, em, context: { tenantId } }) => {
      const where: FilterQuery<WebhookDelivery> = { tenantId };
      if (query.endpointId) where.endpointId = query.endpointId;
      if (query.eventType) where.eventType = query.eventType;
      if (query.status) where.status = query.status;
      const page = await findPage(em, WebhookDelivery, where, query, 'id');
      return { status: 200, body: { items: await withAttempts(em, page.items), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/webhooks/deliveries/:deliveryId',
    scope: 'tenant',
    roles: ['tenant-webhook-read'],
    summary: 'One delivery, with every attempt',
    tags: ['Webhooks'],
    params: DeliveryIdParamsSchema,
    responses: { 200: { description: 'The delivery', schema: DeliverySchema } },
    // Its status and its attempts from one view.
    transactional: 'snapshot',
    handler: async ({ params, em, context: { tenantId } }) => {
      const delivery = await em.findOne(WebhookDelivery, { id: params.deliveryId, tenantId });
      if (!delivery) throw new ApiError(404, 'delivery_not_found', `no delivery ${params.deliveryId}`);
      return { status: 200, body: (await withAttempts(em, [delivery]))[0] };
    },
  });

  routes.add({
    method: 'post',
    path: '/webhooks/deliveries/:deliveryId/replay',
    scope: 'tenant',
    roles: ['tenant-webhook-write'],
    summary: 'Send a delivery again',
    description:
      'A new delivery of the same event to the same endpoint, with the same webhook-id: receivers can tell it is a repeat. Refused (409 delivery_under_way) while a copy of it is still being sent.',
    tags: ['Webhooks'],
    params: DeliveryIdParamsSchema,
    responses: { 202: { description: 'The new delivery, under way', schema: DeliverySchema } },
    problems: [409],
    handler: async ({ params, em, afterCommit, context: { tenantId } }) => {
      const original = await em.findOne(WebhookDelivery, { id: params.deliveryId, tenantId });
      if (!original) throw new ApiError(404, 'delivery_not_found', `no delivery ${params.deliveryId}`);
      // Locked, so two replays (or a replay and a recovery) of one event cannot both see no copy under way.
      const endpoint = await findEndpoint(em, tenantId, original.endpointId, true);
      if (!endpoint.enabled) throw new ApiError(409, 'endpoint_disabled', 'enable the endpoint first');
      // A second copy would be sent on a schedule of its own beside the first, twice as often.
      const underWay = await em.findOne(
        WebhookDelivery,
        { endpointId: endpoint.id, eventId: original.eventId, status: 'PENDING' },
        { fields: ['id'] },
      );
      if (underWay)
        throw new ApiError(409, 'delivery_under_way', `delivery ${underWay.id} of this event is still being sent`);
      const [copy] = resend(em, [original], afterCommit);
      return { status: 202, body: presentDelivery(copy, []) };
    },
  });

  routes.add({
    method: 'get',
    path: '/events',
    scope: 'tenant',
    roles: ['tenant-webhook-read'],
    summary: 'The event log, newest first: every event of the tenant’s orders, recorded once',
    tags: ['Webhooks'],
    query: EventQuerySchema,
    responses: { 200: { description: 'A page of events', schema: EventListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const where: FilterQuery<OrderEvent> = { tenantId };
      if (query.type) where.type = query.type;
      if (query.orderRef) where.orderRef = query.orderRef;
      if (query.since || query.until) {
        where.createdAt = {
          ...(query.since ? { $gte: new Date(query.since) } : {}),
          ...(query.until ? { $lt: new Date(query.until) } : {}),
        };
      }
      const page = await findPage(em, OrderEvent, where, query, 'id');
      return { status: 200, body: { items: page.items.map(presentEvent), nextCursor: page.nextCursor } };
    },
  });
}
