import { EVENT_TYPES } from '../../domain/webhook.js';
import {
  namingSomeField,
  PageQuerySchema,
  RefSchema,
  TextSchema,
  TimestampQuerySchema,
} from '../../api/http/common-schemas.js';
import { z } from '../../api/http/zod.js';

const EventTypesSchema = z
  .array(z.enum(EVENT_TYPES))
  .max(EVENT_TYPES.length)
  .openapi({ description: 'Event types sent to the endpoint; empty sends every type' });

const UrlSchema = z
  .url({ protocol: /^https?$/ })
  .max(2000)
  .openapi({
    description: 'https to a public address (http to loopback only in local development)',
    example: 'https://example.com/webhooks',
  });

export const CreateEndpointSchema = z
  .object({
    url: UrlSchema,
    eventTypes: EventTypesSchema.default([]),
    enabled: z.boolean().default(true),
    description: TextSchema(500).optional(),
  })
  .strict()
  .openapi('CreateWebhookEndpoint');

export const UpdateEndpointSchema = namingSomeField(
  z
    .object({
      url: UrlSchema.optional(),
      eventTypes: EventTypesSchema.optional(),
      enabled: z
        .boolean()
        .optional()
        .openapi({ description: 'Enabling an endpoint the platform disabled clears the reason' }),
      description: TextSchema(500).nullable().optional(),
    })
    .strict(),
).openapi('UpdateWebhookEndpoint');

export const RotateSecretSchema = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .default(24 * 3600)
      .openapi({ description: 'How long deliveries are also signed with the old secret (default a day)' }),
  })
  .strict()
  .openapi('RotateWebhookSecret');

export const RecoverSchema = z
  .object({
    since: TimestampQuerySchema.openapi({
      description: 'Re-send every failed delivery to the endpoint made since then',
    }),
  })
  .strict()
  .openapi('RecoverWebhookDeliveries');

export const EndpointSchema = z
  .object({
    endpointId: z.uuid(),
    url: z.string(),
    eventTypes: z.array(z.string()),
    enabled: z.boolean(),
    description: z.string().nullable(),
    disabledReason: z
      .string()
      .nullable()
      .openapi({ description: 'Why the platform disabled it (410 Gone, failing for 5 days)' }),
    failingSince: z.iso.datetime().nullable(),
    previousSecretValidUntil: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('WebhookEndpoint');

export const EndpointWithSecretSchema = EndpointSchema.extend({
  secret: z.string().openapi({ description: 'whsec_…: shown now, and at the next rotation; never again' }),
}).openapi('WebhookEndpointWithSecret');

export const EndpointListSchema = z
  .object({ items: z.array(EndpointSchema), nextCursor: z.string().nullable() })
  .openapi('WebhookEndpointList');

export const EndpointIdParamsSchema = z.object({ endpointId: z.uuid() });
export const DeliveryIdParamsSchema = z.object({ deliveryId: z.uuid() });

const DELIVERY_STATUSES = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;

export const DeliveryQuerySchema = PageQuerySchema.extend({
  endpointId: z.uuid().optional(),
  eventType: z.enum(EVENT_TYPES).optional(),
  status: z.enum(DELIVERY_STATUSES).optional(),
}).strict();

const AttemptSchema = z
  .object({
    attempt: z.number().int(),
    attemptedAt: z.iso.datetime(),
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int(),
    error: z.string().nullable(),
    nextAttemptAt: z.iso.datetime().nullable(),
  })
  .openapi('WebhookAttempt');

export const DeliverySchema = z
  .object({
    deliveryId: z.uuid(),
    endpointId: z.uuid(),
    eventId: z.uuid(),
    eventType: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    nextAttemptAt: z.iso.datetime().nullable(),
    replayOf: z.uuid().nullable(),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    attemptLog: z.array(AttemptSchema).openapi({ description: 'Every attempt, oldest first' }),
  })
  .openapi('WebhookDelivery');

export const DeliveryListSchema = z
  .object({ items: z.array(DeliverySchema), nextCursor: z.string().nullable() })
  .openapi('WebhookDeliveryList');

export const RecoveredSchema = z.object({ deliveries: z.array(DeliverySchema) }).openapi('RecoveredDeliveries');

export const EventQuerySchema = PageQuerySchema.extend({
  type: z.enum(EVENT_TYPES).optional(),
  orderRef: RefSchema.optional(),
  since: TimestampQuerySchema.optional(),
  until: TimestampQuerySchema.optional(),
}).strict();

export const EventSchema = z
  .object({
    eventId: z.uuid(),
    type: z.string(),
    orderRef: z.string().nullable().openapi({ description: 'Null for the tenant’s own events (webhook.*)' }),
    instructionRef: z.string().nullable(),
    occurredAt: z.iso.datetime(),
    payload: z.record(z.string(), z.unknown()).openapi({ description: 'What endpoints receive' }),
  })
  .openapi('Event');

export const EventListSchema = z
  .object({ items: z.array(EventSchema), nextCursor: z.string().nullable() })
  .openapi('EventList');
