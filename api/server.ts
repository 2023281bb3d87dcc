import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApi, type ApiDependencies } from './create-app.js';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

/** Serves the API; close() stops taking connections and lets requests in flight finish (up to graceMs). */
export async function startApiServer(deps: ApiDependencies, port: number, host = '127.0.0.1', graceMs = 10_000): Promise<RunningApi> {
  const server: Server = await new Promise((resolve, reject) => {
    const s = createApi(deps).listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  const { port: boundPort } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${boundPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
