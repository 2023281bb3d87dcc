import type { OrderEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '../../db/entities/index.js';

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);

/** Never the secret: the create and rotate routes add it, once. */
export function presentEndpoint(endpoint: WebhookEndpoint) {
  return {
    endpointId: endpoint.id,
    url: endpoint.url,
    eventTypes: endpoint.eventTypes,
    enabled: endpoint.enabled,
    description: endpoint.description ?? null,
    disabledReason: endpoint.disabledReason ?? null,
    failingSince: iso(endpoint.failingSince),
    previousSecretValidUntil: endpoint.previousSecretCiphertext ? iso(endpoint.previousSecretExpiresAt) : null,
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
  };
}

export function presentDelivery(delivery: WebhookDelivery, attempts: WebhookAttempt[]) {
  return {
    deliveryId: delivery.id,
    endpointId: delivery.endpointId,
    eventId: delivery.eventId,
    eventType: delivery.eventType,
    status: delivery.status,
    attempts: delivery.attempts,
    nextAttemptAt: iso(delivery.nextAttemptAt),
    replayOf: delivery.replayOf ?? null,
    createdAt: delivery.createdAt.toISOString(),
    finishedAt: iso(delivery.finishedAt),
    attemptLog: attempts
      .sort((a, b) => a.attempt - b.attempt)
      .map((a) => ({
        attempt: a.attempt,
        attemptedAt: a.attemptedAt.toISOString(),
        statusCode: a.statusCode ?? null,
        latencyMs: a.latencyMs,
        error: a.error ?? null,
        nextAttemptAt: iso(a.nextAttemptAt),
      })),
  };
}

export function presentEvent(event: OrderEvent) {
  return {
    eventId: event.id,
    type: event.type,
    orderRef: event.orderRef ?? null,
    instructionRef: event.instructionRef ?? null,
    occurredAt: event.occurredAt.toISOString(),
    payload: JSON.parse(event.payload) as Record<string, unknown>,
  };
}
