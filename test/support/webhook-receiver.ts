import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  payload: {
    id: string;
    type: string;
    data: { order: Record<string, unknown>; instruction?: Record<string, unknown> };
  };
  at: number;
}

/**
 * How the receiver answers the n-th request (1-based): a status and headers, with a body that never
 * ends if `endlessBody`, or no answer at all.
 */
export type Answer = { status: number; headers?: Record<string, string>; endlessBody?: boolean } | 'hang';

/**
 * A tenant's webhook endpoint on loopback: keeps every request as it came, verifies them with the
 * Standard Webhooks library (as a tenant would), and answers as the test says.
 */
export async function startWebhookReceiver(answer: (n: number) => Answer | Promise<Answer> = () => ({ status: 200 })) {
  const received: ReceivedWebhook[] = [];
  let count = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      count += 1;
      received.push({
        id: req.headers['webhook-id'] as string,
        headers: req.headers,
        body,
        payload: JSON.parse(body),
        at: Date.now(),
      });
      void Promise.resolve(answer(count)).then(
        (reply) => {
          if (reply === 'hang') return; // never answers: the sender's timeout ends it
          if (!reply.endlessBody) return void res.writeHead(reply.status, reply.headers).end();
          res.writeHead(reply.status, reply.headers);
          const chunk = Buffer.alloc(64 * 1024, 'x');
          const timer = setInterval(() => res.write(chunk), 10);
          res.on('close', () => clearInterval(timer));
        },
        (err: Error) => res.destroy(err),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    /** Whether the request verifies with `secret`, as the Standard Webhooks library checks it. */
    verifies(request: ReceivedWebhook, secret: string): boolean {
      try {
        new Webhook(secret.replace(/^whsec_/, '')).verify(request.body, request.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
