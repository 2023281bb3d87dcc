import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { ApiSettings } from '../config.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';
import { LOG_SERIALIZERS, serializeError } from '../logger.js';
import { addAuditRoutes } from '../api/audit/routes.js';
import { tokenSigningKey } from '../api/auth/access-token.js';
import { authenticate, countingFailures, type SecurityKeyGrant } from '../api/auth/authenticate.js';
import { errorHandler, notFoundHandler, outageOf, unavailableAnswerOf } from '../api/http/error-handler.js';
import { IdempotencyStore } from '../api/http/idempotency.js';
import { refusePaymentDataInUrlAndKey, refuseUnstorableStrings, requireJsonBody } from '../api/http/json-body.js';
import { createOpenApiRegistry, generateOpenApiDocument } from '../api/http/openapi.js';
import { perKeyRateLimit } from '../api/http/rate-limit.js';
import { requestId } from '../api/http/request-id.js';
import { RouteTable } from '../api/http/route-table.js';
import { addIdentityRoutes } from '../api/identity/routes.js';
import { addSecurityKeyRoutes } from '../api/keys/routes.js';
import { RowCache } from '../db/row-cache.js';
import { RowChanges } from '../db/row-changes.js';
import { watchRowChangeListener } from '../observability/metrics.js';
import { addOrderChangeRoutes } from '../orders/http/change-routes.js';
import { addOrderRoutes } from '../orders/http/order-routes.js';
import { addInstructionRoutes } from '../orders/http/instruction-routes.js';
import { addReconciliationRoutes } from '../reconciliation/http/routes.js';
import { Reconciliation } from '../reconciliation/reconciliation.js';
import { docsRouter } from '../api/system/docs.js';
import { healthRouter } from '../api/system/health.js';
import { metricsRouter } from '../api/system/metrics.js';
import { requestMetrics, routeOf } from '../api/http/request-metrics.js';
import { requestTracing } from '../api/http/request-tracing.js';
import { registerInstructionGauges } from '../orders/instruction-gauges.js';
import { registerDeliveryGauges } from '../webhooks/delivery-gauges.js';
import { addTenantRoutes } from '../api/tenants/routes.js';
import { addMarketplaceRoutes } from '../api/marketplace/routes.js';
import { resolvedUrlProblem } from '../apps/outbound-guard.js';
import { addProviderRoutes } from '../orders/http/provider-callbacks.js';
import { addSchemeRoutes } from '../api/schemes/routes.js';
import { addVoucherRoutes } from '../api/vouchers/routes.js';
import { CustomerService } from '../customers/customer-service.js';
import { addCustomerRoutes } from '../customers/http/routes.js';
import { InstrumentStore } from '../customers/instrument-store.js';
import { addWebhookRoutes } from '../webhooks/http/routes.js';
import { csrfKey } from '../orders/pay-page/csrf.js';
import { payPageRouter } from '../orders/pay-page/router.js';
import { paymentLinkKeys } from '../orders/payment-link-token.js';
import { PaymentLinks } from '../orders/payment-links.js';
import { addPaymentLinkRoutes } from '../orders/http/payment-links.js';
import { OrderService, type OrderReadCaches, type TenantSettingsRow } from '../orders/order-service.js';
import type { CurrentScheme } from '../orders/scheme-resolution.js';
import { InstallationCache } from '../orders/activities/installation-cache.js';
import { ProviderResults } from '../orders/provider-results.js';
import { Mandates } from '../orders/mandates.js';
import type { AppConnector } from '../apps/app-connector.js';

export interface ApiDependencies {
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  /** Seal secrets at rest; the current one also derives the access-token signing key. */
  masterKeys: MasterKeys;
  settings: ApiSettings;
  /** App connectors: the API uses them to verify providers' callbacks. */
  apps: Map<string, AppConnector>;
  /** Check every answer against its route's declared schema (the test suite does). */
  checkResponses?: boolean;
  /** A worker in this process (`npm start`): where the SDK serves its metrics, added to `/metrics`. */
  sdkMetricsUrl?: string;
  /**
   * The database to hear row changes from (PostgreSQL's NOTIFY, db/row-changes.ts), so that what
   * every call reads (its security key; for an order, its tenant's settings and schemes) is read once,
   * not per call. Without it, nothing is cached.
   */
  rowChangesUrl?: string;
}

const UNLOGGED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function createApi(deps: ApiDependencies): Express {
  const { orm, temporal, logger, settings } = deps;
  const secretBox = SecretBox.fromMasterKeys(deps.masterKeys);
  const signingKey = tokenSigningKey(deps.masterKeys.current);
  const registry = createOpenApiRegistry();
  const rowChanges = deps.rowChangesUrl ? RowChanges.listen(deps.rowChangesUrl, logger) : undefined;
  const unwatchRowChanges = rowChanges ? watchRowChangeListener(rowChanges) : () => undefined;
  const securityKeys = new RowCache<SecurityKeyGrant>(rowChanges, 'security_key');
  const readCaches: OrderReadCaches = {
    tenants: new RowCache<TenantSettingsRow>(rowChanges, 'tenant'),
    // A tenant's schemes hold every rule of each: fewer tenants' are kept than keys or settings.
    schemes: new RowCache<CurrentScheme[]>(rowChanges, 'scheme', 1_000),
  };

  const routes = new RouteTable(registry);
  addIdentityRoutes(routes, {
    secretBox,
    tokenSigningKey: signingKey,
    tokenTtlSeconds: settings.accessTokenTtlSeconds,
  });
  addTenantRoutes(routes, { tenants: readCaches.tenants });
  addSecurityKeyRoutes(routes, { secretBox, securityKeys });
  addAuditRoutes(routes);
  addMarketplaceRoutes(routes, {
    secretBox,
    outboundUrls: { allowLoopbackHttp: settings.allowLoopbackHttp },
    resolvedUrlProblem,
  });
  addSchemeRoutes(routes, { schemes: readCaches.schemes });
  addVoucherRoutes(routes);
  const instruments = new InstrumentStore(secretBox);
  addCustomerRoutes(routes, new CustomerService(), instruments);
  const orders = new OrderService({ orm, temporal, readCaches });
  addOrderRoutes(routes, orders);
  addOrderChangeRoutes(routes, orders);
  addInstructionRoutes(routes, {
    stallMs: settings.exportStallSeconds * 1000,
    lockWaitMs: settings.exportLockWaitSeconds * 1000,
    searchTimeoutMs: settings.searchTimeoutSeconds * 1000,
  });
  addReconciliationRoutes(routes, new Reconciliation({ orm, apps: deps.apps, secretBox, temporal, logger }));
  const mandates = new Mandates({ orm, temporal });
  addProviderRoutes(routes, {
    results: new ProviderResults({ orm, temporal, logger }),
    mandates,
    secretBox,
    apps: deps.apps,
  });
  addWebhookRoutes(routes, {
    orm,
    temporal,
    secretBox,
    outboundUrls: { allowLoopbackHttp: settings.allowLoopbackHttp },
  });
  const links = new PaymentLinks(orders, paymentLinkKeys(deps.masterKeys), {
    publicApiUrl: settings.publicApiUrl,
    defaultTtlSeconds: settings.paymentLinkTtlSeconds,
    payoutTtlSeconds: settings.payoutLinkTtlSeconds,
  });
  addPaymentLinkRoutes(routes, links);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // Behind a load balancer, the client's address (what sign-in attempts are counted by) is in X-Forwarded-For.
  app.set('trust proxy', settings.trustProxy);
  app.locals.routes = routes.list();
  app.locals.hearsRowChanges = () => rowChanges?.live ?? false;
  // What stopping the server waits for once the last request has been answered (startApiServer).
  app.locals.onClose = async () => {
    try {
      await orders.close();
    } finally {
      unwatchRowChanges();
      await rowChanges?.close();
    }
  };

  app.use(requestId);
  app.use(requestMetrics);
  registerInstructionGauges(orm);
  registerDeliveryGauges(orm);
  // The customer's page: HTML forms, not the JSON API, and logged without the token in its address.
  app.use(
    '/pay',
    payPageRouter({
      orm,
      orders,
      links,
      logger,
      csrfKey: csrfKey(deps.masterKeys.current),
      apps: deps.apps,
      installations: new InstallationCache(orm, secretBox),
      instruments,
      mandates,
      publicUrl: settings.publicApiUrl,
      rateLimit: perKeyRateLimit(orm, {
        limitPerMinute: settings.rateLimitPerMinute,
        namespace: `${settings.rateLimitNamespace}:pay`,
        by: 'address',
      }),
    }),
  );
  app.use(
    pinoHttp({
      logger,
      serializers: LOG_SERIALIZERS,
      genReqId: (_req, res) => (res as express.Response).locals.requestId,
      // An outage is expected while a dependency restarts, and a 503 a route chose is an answer:
      // warnings, both (errorHandler).
      customLogLevel: (_req, res, err) =>
        outageOf(res) || unavailableAnswerOf(res) ? 'warn' : err || res.err || res.statusCode >= 500 ? 'error' : 'info',
      // The route as declared, never the address: a line says what was asked without repeating what
      // was in it (a reference, or a card number someone put in a URL).
      customSuccessMessage: (req, res, ms) =>
        `${req.method} ${routeOf(req as express.Request, res as express.Response)} → ${res.statusCode} in ${Math.round(ms)} ms`,
      // An error the error handler has logged whole ("request failed") is named here, not logged again.
      customErrorObject: (_req, res, error, logged: Record<string, unknown>) => {
        const outage = outageOf(res);
        const answered = unavailableAnswerOf(res);
        if (error !== res.err && !outage && !answered) return logged;
        const { err: _whole, ...rest } = logged;
        if (outage) return { ...rest, failure: `dependency unavailable: ${outage}` };
        if (answered) return { ...rest, failure: `answered ${answered}` };
        const { type, message } = serializeError(error);
        return { ...rest, failure: `${String(type)}: ${String(message)}` };
      },
      customErrorMessage: (req, res) =>
        `${req.method} ${routeOf(req as express.Request, res as express.Response)} → ${res.statusCode}`,
      // Probes and scrapes come every few seconds: logged only when they fail.
      autoLogging: { ignore: (req) => UNLOGGED_PATHS.has(req.url?.split('?')[0] ?? '') },
    }),
  );
  app.use(refusePaymentDataInUrlAndKey);
  app.use(requireJsonBody);
  const jsonBody = (limit: string) =>
    express.json({
      limit,
      // The HMAC signature covers the body bytes as sent, not as re-serialised.
      verify: (req, _res, buf) => {
        (req as { rawBody?: string }).rawBody = buf.toString('utf8');
      },
    });
  const authenticateRequest = countingFailures(
    authenticate(orm, signingKey, securityKeys),
    perKeyRateLimit(orm, {
      limitPerMinute: settings.rateLimitPerMinute,
      namespace: `${settings.rateLimitNamespace}:unauthenticated`,
      by: 'address',
    }),
  );
  // A batch of orders may be larger than any other body; everything else keeps the small limit. Its
  // caller is authenticated before a body that large is read: a stranger's is refused unread.
  const batchItems = routes.batchItems();
  if (batchItems.size > 0) app.use([...batchItems.keys()], authenticateRequest, jsonBody(settings.batchBodyLimit));
  app.use(jsonBody(settings.bodyLimit));
  app.use(refuseUnstorableStrings(batchItems));
  app.use(requestTracing);

  app.use(healthRouter(orm, temporal));
  app.use(metricsRouter({ token: settings.metricsToken, sdkMetricsUrl: deps.sdkMetricsUrl }));
  app.use(docsRouter(() => generateOpenApiDocument(registry)));
  app.use(
    '/v1',
    routes.router(
      {
        authenticate: authenticateRequest,
        // Two limiters: counts before sign-in (by address) are kept apart from counts by key.
        rateLimit: perKeyRateLimit(orm, {
          limitPerMinute: settings.rateLimitPerMinute,
          namespace: settings.rateLimitNamespace,
          by: 'key',
        }),
        publicRateLimit: perKeyRateLimit(orm, {
          limitPerMinute: settings.rateLimitPerMinute,
          namespace: settings.rateLimitNamespace,
          by: 'address',
        }),
      },
      { orm, idempotency: new IdempotencyStore(orm, secretBox), checkResponses: deps.checkResponses },
    ),
  );

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
