import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApi, type ApiDependencies } from './create-api.js';

export interface RunningApi {
  url: string;
  /** Every /v1 route with its scope and roles, as the route table enforces them. */
  routes: { method: string; path: string; scope: string; roles: string[] }[];
  /** Whether it hears rows change in PostgreSQL now, so may keep the keys it reads (db/row-changes.ts). */
  hearsRowChanges(): boolean;
  close(): Promise<void>;
}

/** Serves the API; close() stops taking connections and lets requests in flight finish (up to graceMs). */
export async function startApiServer(
  deps: ApiDependencies,
  port: number,
  host = '127.0.0.1',
  graceMs = 10_000,
): Promise<RunningApi> {
  const app = createApi(deps);
  const onClose = app.locals.onClose as () => Promise<void>;
  const server = await new Promise<Server>((resolve, reject) => {
    // Express 5 calls back on a failed listen too (a port in use), with the error.
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  }).catch(async (err: unknown) => {
    // Not serving: what it opened (its row-change listener) must not keep the process alive.
    await onClose().catch(() => undefined);
    throw err;
  });
  const { port: boundPort } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${boundPort}`,
    routes: app.locals.routes as RunningApi['routes'],
    hearsRowChanges: app.locals.hearsRowChanges as () => boolean,
    close: () =>
      new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          onClose().then(resolve, reject);
        });
        server.closeIdleConnections();
      }),
  };
}
