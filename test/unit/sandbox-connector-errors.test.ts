import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MalformedAnswerError } from '../../apps/provider-answer.js';
import { createSandboxConnectors } from '../../apps/sandbox/connector.js';
import { ProviderRejectedError } from '../../domain/payment-outcome.js';

// A provider on loopback answering what the next request is told to: what it says in an error, or
// a body that is not JSON, must not be told on as it is (a failure code, an activity's failure).
let server: Server;
let next: { status: number; body: string };
let baseUrl: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const payment = {
  tenantId: 't',
  orderRef: 'o',
  instructionRef: 'i',
  direction: 'DEBIT',
  amountMinor: '100',
  currency: 'EUR',
  paymentMethod: 'CARD',
  financialInstrumentId: 'card_ok',
} as const;

async function failureOf(status: number, body: string): Promise<Error> {
  next = { status, body };
  const [card] = createSandboxConnectors(got, { baseUrl, callbackBaseUrl: 'http://127.0.0.1:9' });
  return card
    .execute(payment as never, 'key-1', { configuration: {}, secrets: { apiKey: 'sk_test_x' } })
    .then(() => {
      throw new Error('answered');
    })
    .catch((err: Error) => err);
}

describe('the sandbox connector', () => {
  it('tells on an error code it was given only if it reads as one', async () => {
    const coded = await failureOf(400, JSON.stringify({ error: 'invalid_amount' }));
    expect(coded).toBeInstanceOf(ProviderRejectedError);
    expect((coded as ProviderRejectedError).code).toBe('invalid_amount');
    const told = await failureOf(400, JSON.stringify({ error: 'card 4111 1111 1111 1111 tok_secret_1234' }));
    expect(told).toBeInstanceOf(ProviderRejectedError);
    expect((told as ProviderRejectedError).code).toBe('http_400');
    expect(told.message).not.toMatch(/4111|tok_secret/);
    const server = await failureOf(503, JSON.stringify({ error: 'tok_secret_1234 is down' }));
    expect(server.message).toBe('the sandbox provider answered 503 http_503');
  });

  it('does not quote an answer that is not JSON', async () => {
    const failure = await failureOf(200, 'not json: tok_secret_1234');
    expect(failure).toBeInstanceOf(MalformedAnswerError);
    expect(failure.message).toBe('the provider answered 200 with a body that is not JSON');
  });
});
