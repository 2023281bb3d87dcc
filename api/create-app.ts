import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { errorHandler, notFoundHandler } from './error-handler.js';
import { idempotency } from './idempotency.js';
import { createOpenApiRegistry, generateOpenApiDocument } from './openapi.js';
import { requestId } from './request-id.js';
import { docsRouter } from './routes/docs.js';
import { healthRouter } from './routes/health.js';
import { ordersRouter } from './routes/orders.js';
import { tenantContext } from './tenant-context.js';

export interface ApiDependencies {
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  /** Largest JSON body accepted; larger ones get a 413. */
  bodyLimit?: string;
}

export function createApi({ orm, temporal, logger, bodyLimit = '1mb' }: ApiDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const registry = createOpenApiRegistry();

  app.use(requestId);
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => (res as express.Response).locals.requestId,
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );
  app.use(express.json({ limit: bodyLimit }));

  app.use(healthRouter(orm, temporal));
  app.use(docsRouter(() => generateOpenApiDocument(registry)));

  // Every /v1 route is tenant-scoped: the tenant is resolved once here, before any handler runs.
  const v1 = express.Router();
  v1.use(tenantContext);
  v1.use(idempotency(orm, (locals) => `tenant:${locals.tenantId}`));
  v1.use(ordersRouter({ orm, temporal }, registry));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
