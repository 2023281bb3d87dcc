import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { tracer } from '../../observability/tracing.js';
import { routeOf } from './request-metrics.js';

/**
 * A server span per request, continuing a caller's `traceparent`, and the context the handler (and
 * the workflow it starts) runs in. Named at the end, by the route as declared. It comes after the
 * body is read: a body parser's stream events would lose the context.
 */
export const requestTracing: RequestHandler = (req, res, next) => {
  const parent = propagation.extract(context.active(), req.headers);
  const span = tracer.startSpan(
    req.method,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method } },
    parent,
  );
  res.once('finish', () => {
    const route = routeOf(req, res);
    span.updateName(`${req.method} ${route}`);
    span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), next);
};
