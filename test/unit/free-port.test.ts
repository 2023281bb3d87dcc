import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, portIsFree } from '../../observability/free-port.js';

const listening: Server[] = [];
afterAll(async () => {
  await Promise.all(listening.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** The range the OS hands out to outbound connections, which a picked port must stay out of. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return [low, high];
  } catch {
    return [32768, 60999];
  }
}

describe('freePort', () => {
  it('picks ports below the ephemeral range, each listenable and none handed out twice', async () => {
    const [low] = ephemeralRange();
    const ports: number[] = [];
    for (let i = 0; i < 40; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeLessThan(low);
      expect(port).toBeGreaterThanOrEqual(1024);
      expect(await portIsFree(port)).toBe(true);
    }
  });

  it('tells a port someone listens on from a free one', async () => {
    const port = await freePort();
    const server = createServer().listen(port, '127.0.0.1');
    listening.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    expect(await portIsFree(port)).toBe(false);
  });
});
