import type { ZodType } from 'zod';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { ProblemSchema } from './common-schemas.js';

export function createOpenApiRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.register('Problem', ProblemSchema);
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An access token from POST /v1/identity/hmac',
  });
  return registry;
}

/** Problem responses every route can give, referenced by status. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: PROBLEM_DESCRIPTIONS[status] ?? 'Error',
        content: { 'application/problem+json': { schema: ProblemSchema } },
      },
    ]),
  );
}

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input; `errors` names each field at fault',
  401: 'No, bad or expired credentials',
  403: 'The key lacks a role this route needs',
  429: 'Rate limit reached; see Retry-After',
  404: 'Not found (also for another tenant’s objects)',
  409: 'Conflict',
  413: 'Request body too large',
  422: 'Idempotency-Key reused with a different request',
  503: 'A dependency is unavailable; see Retry-After',
};

export function generateOpenApiDocument(registry: OpenAPIRegistry) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Payment scheduler API',
      version: '0.1.0',
      description:
        'Schedules collections and payouts as durable Temporal workflows. Errors are application/problem+json with a machine-readable `code`.',
    },
    servers: [{ url: '/' }],
  });
}

/** `{ content: { 'application/json': { schema } } }`, the body of most requests and responses. */
export function jsonContent(schema: ZodType) {
  return { content: { 'application/json': { schema } } };
}
