import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSandboxApp } from '../../apps/sandbox/server.js';

export interface RunningSandbox {
  url: string;
  /** Payments the provider took whose idempotency key starts with `prefix`. */
  payments(prefix: string): Promise<{ idempotencyKey: string; status: string; amountMinor: string; instrument: string }[]>;
  close(): Promise<void>;
}

/** The sandbox provider on a free loopback port: a real HTTP server, as the worker sees it in production. */
export async function startSandbox(port = 0): Promise<RunningSandbox> {
  const server: Server = await new Promise((resolve, reject) => {
    const s = createSandboxApp().listen(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async payments(prefix) {
      const res = await fetch(`${url}/v1/payments?idempotencyKeyPrefix=${encodeURIComponent(prefix)}`);
      return ((await res.json()) as { items: never[] }).items;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
