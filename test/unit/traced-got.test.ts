import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracedGot } from '../../observability/tracing.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const seen: IncomingHttpHeaders[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  provider.register();
  server = createServer((req, res) => {
    seen.push(req.headers);
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
    expect(seen.at(-1)?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(exporter.getFinishedSpans().at(-1)?.attributes).toMatchObject({ 'url.path': '/v1/payments/pay_1' });
  });

  it('to a tenant’s own provider, names its host alone and sends no trace: its path may hold the tenant’s token', async () => {
    await tracedGot(got, { toTenants: true })(`${base}/hooks/tenant-token-1/payments`);
    expect(seen.at(-1)).not.toHaveProperty('traceparent');
    const span = exporter.getFinishedSpans().at(-1)!;
    expect(span.attributes).not.toHaveProperty('url.path');
    expect(JSON.stringify({ name: span.name, attributes: span.attributes })).not.toContain('tenant-token-1');
  });
});
