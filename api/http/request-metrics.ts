import type { Request, RequestHandler, Response } from 'express';
import { httpRequestDuration, httpRequests } from '../../observability/metrics.js';
import './locals.js';

/**
 * The route that answered a request, as declared (`/v1/order-management/:orderRef`), never the
 * address asked for: what metrics, spans and log lines name a request by. A label per order
 * reference would be a series per order, and an address may hold anything a caller put in it. A
 * request no route took is `unmatched`.
 */
export function routeOf(req: Request, res: Response): string {
  const matched = req.route as { path?: unknown } | undefined;
  return res.locals.route ?? (typeof matched?.path === 'string' ? `${req.baseUrl}${matched.path}` : 'unmatched');
}

/** Counts and times every answer under the route that took it. */
export const requestMetrics: RequestHandler = (req, res, next) => {
  const started = process.hrtime.bigint();
  res.once('finish', () => {
    const route = routeOf(req, res);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
    httpRequestDuration.observe({ route, method: req.method }, seconds);
  });
  next();
};
