import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppRegistry } from '../../apps/app-registry.js';
import { tracedGot } from '../../observability/tracing.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
/** Each request the loopback server took: its path and headers. */
const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
let server: Server;
let base: string;

/** The last request the server took at a path starting with `prefix`, of those since the `since`th. */
const lastAt = (prefix: string, since = 0) =>
  seen
    .slice(since)
    .filter((request) => request.path.startsWith(prefix))
    .at(-1);

beforeAll(async () => {
  provider.register();
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

describe('a provider call, traced', () => {
  it('carries its trace to our own provider, with its path', async () => {
    await tracedGot(got)(`${base}/v1/payments/pay_1`);
    expect(lastAt('/v1/payments/pay_1')?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(exporter.getFinishedSpans().at(-1)?.attributes).toMatchObject({ 'url.path': '/v1/payments/pay_1' });
  });

  it('to a tenant’s own provider, names its host alone and sends no trace: its path may hold the tenant’s token', async () => {
    await tracedGot(got, { toTenants: true })(`${base}/hooks/tenant-token-1/payments`);
    expect(lastAt('/hooks/tenant-token-1')?.headers).not.toHaveProperty('traceparent');
    const span = exporter.getFinishedSpans().at(-1)!;
    expect(span.attributes).not.toHaveProperty('url.path');
    expect(JSON.stringify({ name: span.name, attributes: span.attributes })).not.toContain('tenant-token-1');
  });

  it('as the app registry wires it: the sandbox’s calls carry the trace, a tenant’s own provider’s do not', async () => {
    const registry = createAppRegistry(got, {
      sandboxUrl: base,
      callbackBaseUrl: 'http://127.0.0.1:9',
      outboundUrls: { allowLoopbackHttp: true },
    });
    // Whatever the answer makes of them: only the requests are looked at.
    const askStatus = (appId: string, configuration: Record<string, unknown>, secrets: Record<string, string>) =>
      registry
        .get(appId)!
        .getStatus('pay_1', { configuration, secrets })
        .catch(() => undefined);
    const since = seen.length;
    await askStatus('SANDBOX_CARD', {}, { apiKey: 'sk_test_traced_wiring' });
    await askStatus(
      'HTTP_CONNECTOR',
      { url: `${base}/hooks/tenant-token-2` },
      { signingSecret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` },
    );
    const [sandbox, own] = [lastAt('/v1/', since), lastAt('/hooks/tenant-token-2', since)];
    expect(sandbox?.headers.traceparent).toBeDefined();
    expect(own).toBeDefined();
    expect(own?.headers).not.toHaveProperty('traceparent');
    expect(JSON.stringify(exporter.getFinishedSpans().map((span) => span.attributes))).not.toContain('tenant-token-2');
  });
});
