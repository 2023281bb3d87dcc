import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { authenticate } from './auth/authenticate.js';
import { SecretBox, tokenSigningKey } from './auth/secret-box.js';
import { errorHandler, notFoundHandler } from './error-handler.js';
import { requireJsonBody } from './json-body.js';
import { idempotency } from './idempotency.js';
import { createOpenApiRegistry, generateOpenApiDocument } from './openapi.js';
import { perKeyRateLimit } from './rate-limit.js';
import { requestId } from './request-id.js';
import { RouteTable } from './route-table.js';
import { addAuditRoutes } from './routes/audit.js';
import { docsRouter } from './routes/docs.js';
import { healthRouter } from './routes/health.js';
import { addIdentityRoutes } from './routes/identity.js';
import { addOrderRoutes } from './routes/orders.js';
import { addSecurityKeyRoutes } from './routes/security-keys.js';
import { addTenantRoutes } from './routes/tenants.js';

export interface ApiDependencies {
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  /** 32 bytes, base64: encrypts private keys at rest and derives the token signing key. */
  masterKey: string;
  /** Largest JSON body accepted; larger ones get a 413. */
  bodyLimit?: string;
  rateLimitPerMinute?: number;
  accessTokenTtlSeconds?: number;
}

const DEFAULT_BODY_LIMIT = '1mb';
const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 15 * 60;

export function createApi(deps: ApiDependencies): Express {
  const { orm, temporal, logger } = deps;
  const secretBox = SecretBox.fromBase64(deps.masterKey);
  const signingKey = tokenSigningKey(deps.masterKey);
  const rateLimitPerMinute = deps.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE;
  const registry = createOpenApiRegistry();

  const routes = new RouteTable(registry);
  addIdentityRoutes(routes, {
    orm,
    secretBox,
    tokenSigningKey: signingKey,
    tokenTtlSeconds: deps.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  });
  addTenantRoutes(routes, { orm });
  addSecurityKeyRoutes(routes, { orm, secretBox });
  addAuditRoutes(routes, { orm });
  addOrderRoutes(routes, { orm, temporal });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', false);
  app.locals.routes = routes.list();

  app.use(requestId);
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => (res as express.Response).locals.requestId,
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );
  app.use(requireJsonBody);
  app.use(
    express.json({
      limit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
      // The HMAC signature covers the body bytes as sent, not as re-serialised.
      verify: (req, _res, buf) => {
        (req as { rawBody?: string }).rawBody = buf.toString('utf8');
      },
    }),
  );

  app.use(healthRouter(orm, temporal));
  app.use(docsRouter(() => generateOpenApiDocument(registry)));
  app.use(
    '/v1',
    routes.router({
      authenticate: authenticate(orm, signingKey),
      // Two limiters: counts before sign-in (by address) are kept apart from counts by key.
      rateLimit: perKeyRateLimit(rateLimitPerMinute),
      publicRateLimit: perKeyRateLimit(rateLimitPerMinute),
      idempotency: idempotency(orm, (locals) => {
        const context = locals.context as { tenantId?: string; accountId: string };
        return context.tenantId ? `tenant:${context.tenantId}` : `account:${context.accountId}`;
      }),
    }),
  );

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
