import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { METRICS_CONTENT_TYPE, metricsText, scrapeAllowed } from '../observability/metrics-endpoint.js';

/**
 * A worker's `/metrics` on its own port (WORKER_METRICS_PORT): ours (payments, provider calls,
 * webhook tries) and the SDK's (served by its core on `sdkMetricsUrl`), behind METRICS_TOKEN when set.
 */
export async function startWorkerMetricsServer(options: {
  port: number;
  host?: string;
  token?: string;
  sdkMetricsUrl?: string;
  logger: Logger;
}): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    if (!scrapeAllowed(options.token, req.headers.authorization)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    metricsText(options.sdkMetricsUrl).then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      (err: unknown) => {
        options.logger.error({ err }, 'metrics could not be collected');
        res.writeHead(500).end();
      },
    );
  });
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
