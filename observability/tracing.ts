import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { ClientOptions } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Got } from 'got';

/** The tracer of our own spans (requests, provider calls); Temporal's interceptors name theirs. */
export const tracer = trace.getTracer('payment-scheduler');

export interface Tracing {
  /** What the worker's workflow span sink and activity interceptors export through. */
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Sends what is still buffered; call on shutdown. */
  shutdown(): Promise<void>;
}

/**
 * Traces exported over OTLP/HTTP to `endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT, its `/v1/traces`),
 * with W3C trace context carried across processes: the API's request, the workflow it starts
 * (Temporal's interceptors carry it in headers), each activity, and the provider's HTTP call.
 * Without an endpoint nothing is set up, and every span is a no-op.
 */
export function startTracing(serviceName: string, endpoint: string | undefined): Tracing | undefined {
  if (!endpoint) return undefined;
  const resource = new Resource({ 'service.name': serviceName });
  const spanProcessor = new BatchSpanProcessor(
    new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` }),
    { scheduledDelayMillis: 1000 },
  );
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The global provider, the W3C propagator and a context manager on AsyncLocalStorage.
  provider.register();
  return { resource, spanProcessor, shutdown: () => provider.shutdown() };
}

/** A Temporal client's options when tracing is on: each workflow it starts or signals carries the caller's trace. */
export function clientTracing(tracing: Tracing | undefined): Pick<ClientOptions, 'interceptors'> {
  return tracing ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {};
}

const spans = new WeakMap<object, Span>();

/**
 * `http` with a client span around each request, its context sent in `traceparent`: every call to
 * a provider shows in the trace of the activity that made it. The span names the host and path,
 * never the query (an idempotency key) or a header. `toTenants`: the hosts are the tenants' own (a
 * connector's URL), whose path may hold their token and who are not part of our traces: the span
 * names the host alone, and no `traceparent` is sent.
 */
export function tracedGot(http: Got, { toTenants = false }: { toTenants?: boolean } = {}): Got {
  return http.extend({
    hooks: {
      beforeRequest: [
        (options) => {
          const url = options.url instanceof URL ? options.url : new URL(String(options.url));
          const span = tracer.startSpan(`${options.method} ${url.host}`, {
            kind: SpanKind.CLIENT,
            attributes: {
              'http.request.method': options.method,
              'server.address': url.host,
              ...(toTenants ? {} : { 'url.path': url.pathname }),
            },
          });
          spans.set(options, span);
          if (toTenants) return;
          const headers: Record<string, string> = {};
          propagation.inject(trace.setSpan(context.active(), span), headers);
          Object.assign(options.headers, headers);
        },
      ],
      afterResponse: [
        (response) => {
          const span = spans.get(response.request.options);
          span?.setAttribute('http.response.status_code', response.statusCode);
          if (response.statusCode >= 500) span?.setStatus({ code: SpanStatusCode.ERROR });
          span?.end();
          return response;
        },
      ],
      beforeError: [
        (error) => {
          const span = error.options ? spans.get(error.options) : undefined;
          span?.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
          span?.end();
          return error;
        },
      ],
    },
  });
}
