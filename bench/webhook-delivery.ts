// Event to verified delivery: orders paid at once, sent at a steady rate through the whole stack,
// each raising five events (created, opened, processing, settled, completed) that are recorded in
// the outbox, started as delivery workflows on the webhooks task queue and POSTed, signed, to a
// receiver on loopback that verifies every signature with the standardwebhooks library. Latency is
// from the event's record (its outbox row's commit) to the receiver's verification. Baseline, same
// run, same receiver, same rate: a bare signed HTTP POST of the same bodies from this process.
// `--answer-ms`: the receiver answers that long after it has verified a request, as a busy tenant's
// does; each try holds its slot meanwhile (the endpoint's pace decides how many it may hold).
//   npm run bench -- webhook-delivery --orders 60 --rate 4 [--answer-ms 150]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import got from 'got';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../config.js';
import { OrderEvent } from '../db/entities/index.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { percentile, steadily } from './measure.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '60' },
    rate: { type: 'string', default: '4' },
    'answer-ms': { type: 'string', default: '0' },
  },
});
const orders = Number(values.orders);
const ordersPerSecond = Number(values.rate);
const answerMs = Number(values['answer-ms']);
const EVENTS_PER_ORDER = 5;

/** The tenant's receiver: verifies each request as a tenant would, and notes when it did. */
function startReceiver() {
  const verifiedAt = new Map<string, number>();
  let webhook: Webhook | undefined;
  let refused = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        webhook!.verify(Buffer.concat(chunks).toString(), req.headers as Record<string, string>);
        verifiedAt.set(req.headers['webhook-id'] as string, performance.timeOrigin + performance.now());
        setTimeout(() => res.writeHead(204).end(), answerMs);
      } catch {
        refused += 1;
        res.writeHead(400).end();
      }
    });
  });
  return new Promise<{
    url: string;
    verifiedAt: Map<string, number>;
    trust(secret: string): void;
    refused(): number;
    close(): void;
  }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
        verifiedAt,
        trust: (secret) => (webhook = new Webhook(secret.replace(/^whsec_/, ''))),
        refused: () => refused,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      }),
    ),
  );
}

const today = new Date().toISOString().slice(0, 10);
const orderBody = (index: number) => ({
  orderRef: `hook-bench-${index}`,
  instructions: [
    {
      instructionRef: 'now',
      direction: 'DEBIT',
      amount: '9.99',
      currency: 'EUR',
      country: 'DE',
      openDate: today,
      dueDate: today,
      financialInstrumentId: 'card_visa_4242',
    },
  ],
});

const config = loadConfig();
const stack = await startLocalStack(config, { rateLimitPerMinute: 1_000_000 });
const receiver = await startReceiver();
try {
  const { tenant, client } = await stack.newTenant('webhook bench');
  const created = await client.request<{ secret: string }>('POST', '/v1/webhooks/endpoints', {
    body: { url: receiver.url },
  });
  if (created.status !== 201) throw new Error(`endpoint: ${created.status} ${JSON.stringify(created.body)}`);
  receiver.trust(created.body.secret);

  // The platform: orders at a steady rate, then wait for every event to be verified at the receiver.
  await steadily(orders, ordersPerSecond, async (i) => {
    const res = await client.request('POST', '/v1/order-management', { body: orderBody(i) });
    if (res.status !== 202) throw new Error(`order ${i}: ${res.status} ${JSON.stringify(res.body)}`);
  });
  const expected = orders * EVENTS_PER_ORDER;
  const deadline = Date.now() + 120_000;
  while (receiver.verifiedAt.size < expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  if (receiver.verifiedAt.size < expected)
    throw new Error(`only ${receiver.verifiedAt.size} of ${expected} events arrived in time`);
  const events = await stack.orm.em.fork().find(OrderEvent, { tenantId: tenant.tenantId });
  const platform = events.map((e) => receiver.verifiedAt.get(e.id)! - e.createdAt.getTime()).sort((a, b) => a - b);

  // The baseline: the same bodies, signed, POSTed straight to the same receiver at the same pace.
  const signer = new Webhook(created.body.secret.replace(/^whsec_/, ''));
  const bare: number[] = [];
  await steadily(events.length, ordersPerSecond * EVENTS_PER_ORDER, async (i) => {
    const event = events[i];
    const id = `bare-${event.id}`;
    const sentAt = performance.timeOrigin + performance.now();
    const at = new Date();
    await got.post(receiver.url, {
      body: event.payload,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signer.sign(id, at, event.payload),
      },
    });
    bare.push(receiver.verifiedAt.get(id)! - sentAt);
  });
  bare.sort((a, b) => a - b);

  const line = (name: string, sorted: number[]) =>
    `  ${name.padEnd(44)} p50 ${percentile(sorted, 50).toFixed(1).padStart(7)} ms   p99 ${percentile(sorted, 99).toFixed(1).padStart(7)} ms`;
  console.log(
    `webhook delivery: ${orders} orders at ${ordersPerSecond}/s, ${events.length} events, the receiver answering ${answerMs} ms after it verifies, database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}`,
  );
  console.log(line('event recorded -> verified at the receiver', platform));
  console.log(line('bare signed POST -> verified (baseline)', bare));
  console.log(
    `  p50 ratio ${(percentile(platform, 50) / percentile(bare, 50)).toFixed(1)}x; signatures refused: ${receiver.refused()}`,
  );
} finally {
  receiver.close();
  await stack.stop();
}
