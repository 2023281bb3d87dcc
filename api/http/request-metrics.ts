import type { RequestHandler } from 'express';
import { httpRequestDuration, httpRequests } from '../../observability/metrics.js';
import './locals.js';

/**
 * Counts and times every answer under the route that took it, as declared (`/v1/order-management/:orderRef`),
 * never the address asked for: a label per order reference would be a series per order. A request
 * no route took is `unmatched`.
 */
export const requestMetrics: RequestHandler = (req, res, next) => {
  const started = process.hrtime.bigint();
  res.once('finish', () => {
    const matched = req.route as { path?: unknown } | undefined;
    const route =
      res.locals.route ?? (typeof matched?.path === 'string' ? `${req.baseUrl}${matched.path}` : 'unmatched');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
    httpRequestDuration.observe({ route, method: req.method }, seconds);
  });
  next();
};
