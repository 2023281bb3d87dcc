import { createSocket, type Socket } from 'node:dgram';
import type { LookupAddress } from 'node:dns';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  guardedLookup,
  networkResolver,
  outboundResolver,
  resolvedUrlProblem,
  type ResolveAll,
} from '../../apps/outbound-guard.js';

/** A name server on loopback: answers the names it holds, says there is no such name for others, and never answers "silent" ones. */
const RECORDS: Record<string, { A?: string[]; AAAA?: string[] }> = {
  'pay.example.test': { A: ['93.184.216.34'], AAAA: ['2606:2800:220:1::248'] },
  'inside.example.test': { A: ['10.0.0.5'] },
  'half.example.test': { A: ['93.184.216.35'] },
};
let server: Socket;
let servers: string[];
let asked = 0;

beforeAll(async () => {
  server = createSocket('udp4');
  server.on('message', (message, from) => {
    const query = packet.decode(message);
    const question = query.questions![0];
    asked += 1;
    if (question.name.startsWith('silent')) return;
    // A name server that drops AAAA queries for this name.
    if (question.name === 'half.example.test' && question.type === 'AAAA') return;
    const held = RECORDS[question.name];
    const type = question.type as 'A' | 'AAAA';
    const answers = (held?.[type] ?? []).map((data) => ({ name: question.name, type, ttl: 60, data }));
    const response: packet.Packet = {
      id: query.id,
      type: 'response',
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (held ? 0 : 3), // rcode 3: no such name
      questions: query.questions,
      answers,
    };
    const reply = packet.encode(response);
    server.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  servers = [`127.0.0.1:${server.address().port}`];
});
afterAll(() => server.close());

const connectTo = (resolveAll: ResolveAll, host: string, allowLoopbackHttp = false) =>
  new Promise<string>((resolve, reject) =>
    guardedLookup({ allowLoopbackHttp }, resolveAll)(host, { family: 4 }, (err, address) =>
      err ? reject(err) : resolve(address as string),
    ),
  );

describe('host names of outbound calls', () => {
  it('are asked of the name servers: every address of the family asked, and a private one refused', async () => {
    const resolve = networkResolver({ servers });
    const all = await resolve('pay.example.test');
    expect(all).toEqual<LookupAddress[]>([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::248', family: 6 },
    ]);
    expect(await resolve('pay.example.test', { family: 6 })).toEqual([{ address: '2606:2800:220:1::248', family: 6 }]);
    const guarded = outboundResolver(undefined, resolve);
    expect(await connectTo(guarded, 'pay.example.test')).toBe('93.184.216.34');
    await expect(connectTo(guarded, 'inside.example.test')).rejects.toThrow(
      /^inside.example.test does not resolve to a public address$/,
    );
    await expect(connectTo(guarded, 'nowhere.example.test')).rejects.toThrow(/does not resolve to a public address$/);
  });

  it('never wait on one another: names whose name server is silent time out while another name answers at once', async () => {
    const resolve = networkResolver({ servers, timeoutMs: 1_500 });
    const silent = Array.from({ length: 12 }, (_, i) => resolve(`silent-${i}.example.test`).catch((err: Error) => err));
    // Answered while all twelve still wait (before their time is up, they have not settled).
    let silentSettled = false;
    void Promise.all(silent).then(() => (silentSettled = true));
    expect(await resolve('pay.example.test', { family: 4 })).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(silentSettled).toBe(false);
    const failures = await Promise.all(silent);
    expect(failures.every((f) => f instanceof Error && /did not resolve within 1500 ms/.test(f.message))).toBe(true);
    expect(asked).toBeGreaterThan(12);
  });

  it('keeps the A answer of a name whose AAAA query is never answered', async () => {
    const resolve = networkResolver({ servers, timeoutMs: 2_000 });
    expect(await resolve('half.example.test')).toEqual([{ address: '93.184.216.35', family: 4 }]);
  });

  it('takes an IPv6 literal for the address it is, not for a local name', async () => {
    const policy = { allowLoopbackHttp: false };
    expect(await resolvedUrlProblem('https://[2606:4700::1111]/hook', policy)).toBeUndefined();
    expect(await resolvedUrlProblem('https://[fd00::1]/hook', policy)).toBe(
      'its host does not resolve to a public address',
    );
  });

  it('refuses a local name outside local development without looking it up', async () => {
    let lookedUp = 0;
    const counting: ResolveAll = () => {
      lookedUp += 1;
      return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
    };
    const guarded = outboundResolver(counting, counting);
    await expect(connectTo(guarded, 'intranet')).rejects.toThrow(/^intranet does not resolve to a public address$/);
    await expect(connectTo(guarded, 'api.localhost')).rejects.toThrow(/does not resolve to a public address$/);
    expect(lookedUp).toBe(0);
    expect(await connectTo(guarded, 'localhost', true)).toBe('127.0.0.1');
    expect(lookedUp).toBe(1);
  });
});
