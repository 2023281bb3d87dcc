import { createServer } from 'node:net';
import { portsAround, type TemporalServerPorts } from './server-config.js';

const isFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/**
 * Ports for a Temporal server of its own (a frontend and Temporal's usual layout around it) with
 * nothing listening on any of them: for a test's or a benchmark's cluster beside one already running.
 */
export async function freeTemporalPorts(): Promise<TemporalServerPorts> {
  for (;;) {
    // The server stores its membership ports as smallint: all of them below 32768.
    const ports = portsAround(20_000 + Math.floor(Math.random() * 12_000));
    if ((await Promise.all(Object.values(ports).map(isFree))).every(Boolean)) return ports;
  }
}
