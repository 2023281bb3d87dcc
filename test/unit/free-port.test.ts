import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { FREE_PORT_RANGE, freePort, portIsFree } from '../../observability/free-port.js';

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

/** The ports WHATWG Fetch refuses to call ("port blocking", §2.9 of the standard). */
const FETCH_BLOCKED_PORTS = [
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
];

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

  // An API given 10080 was unreachable by its own client: "TypeError: fetch failed", cause "bad port".
  it('picks no port that fetch refuses to call', async () => {
    const refused = await Promise.all(
      FETCH_BLOCKED_PORTS.map((port) =>
        fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then(
          () => undefined,
          (error: Error) => ((error.cause as Error | undefined)?.message === 'bad port' ? port : undefined),
        ),
      ),
    );
    expect(refused).toEqual(FETCH_BLOCKED_PORTS);
    const inRange = FETCH_BLOCKED_PORTS.filter((port) => port >= FREE_PORT_RANGE.first && port <= FREE_PORT_RANGE.last);
    expect(inRange).toEqual([]);
  });

  it('tells a port someone listens on from a free one', async () => {
    const port = await freePort();
    const server = createServer().listen(port, '127.0.0.1');
    listening.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    expect(await portIsFree(port)).toBe(false);
  });
});
