import { createServer } from 'node:net';

/**
 * Below the range the OS hands out to outbound connections (32768–60999 on Linux) and below the
 * Temporal layouts picked in 19700–32010 (scripts/cluster/free-ports.ts). A port from the
 * ephemeral range, free when picked, could become any connection's local end before the process
 * it was picked for listens on it; a busy machine opens thousands of loopback connections.
 * Above 10080, the highest of the ports `fetch` refuses to call ("bad port", WHATWG Fetch §2.9):
 * an API put on one of those was unreachable by its own client.
 */
export const FREE_PORT_RANGE = { first: 10_100, last: 19_599 } as const;
const FIRST = FREE_PORT_RANGE.first;
const COUNT = FREE_PORT_RANGE.last - FREE_PORT_RANGE.first + 1;

/** Ports this process already handed out, which may not be listened on yet. */
const handedOut = new Set<number>();

/** A TCP port on loopback that nothing listens on right now, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < COUNT; tries++) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (handedOut.has(port) || !(await portIsFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${FIRST}–${FIRST + COUNT - 1}`);
}

/** Whether a listen on 127.0.0.1 at this port would succeed now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
