// Traces (README "Operations"): with OTEL_EXPORTER_OTLP_ENDPOINT set, `npm run api` and
// `npm run worker` export one trace per order, from the API's request through the workflow and its
// activities to the provider's HTTP call, to an OTLP/HTTP receiver (here one on loopback).
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { PaymentInstruction } from '../../db/entities/index.js';
import { freePort } from '../../observability/free-port.js';
import { eventually } from '../support/eventually.js';
import { startProcess, stopStartedProcesses } from '../support/processes.js';
import { startSystem, type TestSystem } from '../support/system.js';

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

let system: TestSystem;
let receiver: Server;
const received: ReceivedSpan[] = [];
let apiUrl = '';

/** The ids of OTLP's JSON encoding: hex, or base64 from exporters that send bytes. */
const hex = (id: string | undefined) =>
  !id ? undefined : /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');

/** A command of the project, exporting its traces to the receiver. */
function start(script: string, env: Record<string, string>): ChildProcess {
  return startProcess(system, script, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as { port: number }).port}`,
    ...env,
  });
}

beforeAll(async () => {
  system = await startSystem({ worker: false });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        const { resourceSpans = [] } = JSON.parse(body) as { resourceSpans?: any[] };
        for (const resource of resourceSpans) {
          const service = resource.resource?.attributes?.find((a: any) => a.key === 'service.name')?.value?.stringValue;
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? [])
              received.push({
                service,
                traceId: hex(span.traceId)!,
                spanId: hex(span.spanId)!,
                parentSpanId: hex(span.parentSpanId),
                name: span.name,
                kind: span.kind,
              });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  start('worker/main.ts', { PUBLIC_API_URL: apiUrl });
  start('app/main.ts', { API_PORT: String(apiPort), PUBLIC_API_URL: apiUrl });
  await eventually(
    () =>
      fetch(`${apiUrl}/readyz`).then(
        (r) => r.status,
        () => 0,
      ),
    (status) => status === 200,
    { what: 'the traced API', timeoutMs: 60_000 },
  );
}, 90_000);

afterAll(async () => {
  await stopStartedProcesses();
  await new Promise((resolve) => receiver?.close(resolve));
  await system?.close();
});

describe('a traced order', () => {
  it('is one trace from the API request through its workflow and activity to the provider’s HTTP call', async () => {
    // A voucher payout: no reversal window after it, so its workflow ends, and its run's span is exported.
    const tenant = await system.newTenant({ paymentSetup: false });
    const client = new PaymentSchedulerClient({
      baseUrl: apiUrl,
      tenantId: tenant.tenantId,
      publicKey: tenant.publicKey,
      privateKey: tenant.privateKey,
    });
    const setUp = async (path: string, body: unknown) => {
      const res = await tenant.client.request('POST', path, { body });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    };
    await setUp('/v1/marketplace/apps/SANDBOX_VOUCHERS/install', { configuration: { apiKey: tenant.sandboxApiKey } });
    const group = await setUp('/v1/voucher-groups', {
      name: 'rewards',
      vouchers: [{ voucherId: 'amazon-de', enabled: true }],
    });
    await setUp('/v1/schemes/payout', {
      name: 'payouts',
      isDefault: true,
      rules: [
        {
          voucherGroupIds: [group.voucherGroupId],
          options: [{ appId: 'SANDBOX_VOUCHERS', paymentMethods: ['VOUCHER'], priority: 1 }],
        },
      ],
    });
    const now = Date.now();
    const res = await client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'traced',
        instructions: [
          {
            instructionRef: 'i1',
            direction: 'CREDIT',
            amount: '30.00',
            currency: 'EUR',
            country: 'DE',
            openDate: new Date(now - 1000).toISOString(),
            dueDate: new Date(now + 500).toISOString(),
            financialInstrumentId: 'amazon-de',
          },
        ],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await eventually(
      () =>
        system.orm.em.fork().findOne(PaymentInstruction, {
          tenantId: tenant.tenantId,
          order: { orderRef: 'traced' },
          instructionRef: 'i1',
        }),
      (row) => row?.status === 'SETTLED',
      { what: 'the traced payout settled', timeoutMs: 60_000 },
    );
    // The request's server span, and every span of its trace once the provider's call is among them.
    const request = await eventually(
      () => Promise.resolve(received.find((s) => s.name === 'POST /v1/order-management' && s.kind === 2)),
      (span) => span !== undefined,
      { what: 'the request’s span', timeoutMs: 30_000 },
    );
    const trace = () => received.filter((s) => s.traceId === request!.traceId);
    // The provider's call under the payment activity, once the workflow's own spans are in too (at its end).
    const providerCall = await eventually(
      () =>
        Promise.resolve(
          trace().find(
            (s) => s.kind === 3 && s.name.startsWith('POST ') && parentOf(s)?.name === 'RunActivity:executePayment',
          ),
        ),
      (span) => span !== undefined && trace().some((s) => s.name.startsWith('RunWorkflow:')),
      { what: 'the provider call’s span, and the workflow’s', timeoutMs: 30_000 },
    );
    function parentOf(span: ReceivedSpan) {
      return received.find((s) => s.spanId === span.parentSpanId && s.traceId === span.traceId);
    }
    // From the provider's call up to the request: activity, its start in the workflow, the workflow, its start by the API.
    const chain: ReceivedSpan[] = [];
    for (let span: ReceivedSpan | undefined = providerCall; span; span = parentOf(span)) chain.push(span);
    expect(chain.at(-1)).toEqual(request);
    const names = chain.map((s) => `${s.service}: ${s.name}`);
    expect(names[0]).toMatch(/^payment-scheduler-worker: POST 127\.0\.0\.1:\d+$/);
    expect(names).toContain('payment-scheduler-worker: RunActivity:executePayment');
    expect(names).toContain('payment-scheduler-worker: StartActivity:executePayment');
    expect(names.some((n) => /^payment-scheduler-worker: RunWorkflow:/.test(n))).toBe(true);
    expect(names.some((n) => /^payment-scheduler-api: StartWorkflow:/.test(n))).toBe(true);
    expect(names.at(-1)).toBe('payment-scheduler-api: POST /v1/order-management');
  }, 120_000);
});
