import { describe, expect, it } from 'vitest';
import type { LookupAddress } from 'node:dns';
import { boundedResolver, guardedLookup, resolvedUrlProblem } from '../../apps/outbound-guard.js';
import { classifyAddress, outboundUrlProblem } from '../../domain/outbound-url.js';
import {
  deferralDelayMs,
  DELIVERY_SCHEDULE_MS,
  MAX_RETRY_AFTER_MS,
  nextAttemptDelay,
  parseRetryAfter,
} from '../../domain/webhook.js';

describe('the delivery schedule', () => {
  it('is at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then nothing', () => {
    const waits = Array.from({ length: 8 }, (_, i) => nextAttemptDelay(i + 1));
    expect(waits).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, undefined]);
    expect(DELIVERY_SCHEDULE_MS[0]).toBe(0);
  });

  it('puts off a try whose account has every slot for 0.1 s, doubling, at most a minute, jittered by half either way', () => {
    expect([1, 2, 3, 6, 10, 11, 40].map((n) => deferralDelayMs(n, 0.5))).toEqual([
      100, 200, 400, 3_200, 51_200, 60_000, 60_000,
    ]);
    expect(deferralDelayMs(1, 0)).toBe(50);
    expect(deferralDelayMs(1, 0.999)).toBe(150);
    // Jitter never takes it past the longest wait.
    expect(deferralDelayMs(40, 0.999)).toBe(60_000);
  });

  it('waits longer when Retry-After asks, never shorter, and within a day', () => {
    expect(nextAttemptDelay(1, 60_000)).toBe(60_000);
    expect(nextAttemptDelay(3, 60_000)).toBe(1_800_000);
    expect(nextAttemptDelay(1, 10 * MAX_RETRY_AFTER_MS)).toBe(MAX_RETRY_AFTER_MS);
    expect(nextAttemptDelay(8, 60_000)).toBeUndefined();
  });

  it('reads Retry-After as seconds or as a date', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('where tenants may point us (SSRF)', () => {
  it.each([
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'private'],
    ['100.64.0.1', 'private'],
    ['0.0.0.0', 'private'],
    ['fd00::1', 'private'],
    ['fe80::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a00:1', 'private'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'private'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:5db8:d822', 'public'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b:1::a9fe:a9fe', 'private'],
    ['::ffff:0:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['2002:a00:1::1', 'private'],
    ['2001::1', 'private'],
    ['fec0::1', 'private'],
    ['198.18.0.1', 'private'],
    ['255.255.255.255', 'private'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['93.184.216.34', 'public'],
    ['2606:2800:220:1::1', 'public'],
  ])('%s is %s', (address, verdict) => {
    expect(classifyAddress(address)).toBe(verdict);
  });

  it('takes https to public hosts, and loopback http only in local development', () => {
    expect(outboundUrlProblem('https://example.com/x', { allowLoopbackHttp: false })).toBeUndefined();
    expect(outboundUrlProblem('http://example.com/x', { allowLoopbackHttp: true })).toMatch(/https/);
    expect(outboundUrlProblem('http://localhost:8080/x', { allowLoopbackHttp: false })).toMatch(/loopback/);
    expect(outboundUrlProblem('http://localhost:8080/x', { allowLoopbackHttp: true })).toBeUndefined();
    expect(outboundUrlProblem('https://user:pw@example.com/', { allowLoopbackHttp: true })).toMatch(/credentials/);
    expect(outboundUrlProblem('https://[::ffff:10.0.0.1]/hook', { allowLoopbackHttp: true })).toMatch(/private/);
  });

  it('refuses, at connect time, a name that resolves to an address it may not reach', async () => {
    const lookup = (allowLoopbackHttp: boolean) =>
      new Promise<string>((resolve, reject) =>
        guardedLookup({ allowLoopbackHttp })('localhost', { family: 4 }, (err, address) =>
          err ? reject(err) : resolve(address as string),
        ),
      );
    // Without the address: a tenant reads this in its attempt log, and our network's names are ours.
    await expect(lookup(false)).rejects.toThrow(/^localhost does not resolve to a public address$/);
    await expect(lookup(true)).resolves.toBe('127.0.0.1');
  });

  it('tells a name that does not resolve as it tells one of ours, and a name server not answering as it is', async () => {
    const failing = (code: string) => () => Promise.reject(Object.assign(new Error(`getaddrinfo ${code}`), { code }));
    const lookup = (code: string) =>
      new Promise<string>((resolve, reject) =>
        guardedLookup({ allowLoopbackHttp: false }, failing(code))('db.internal', { family: 4 }, (err, address) =>
          err ? reject(err) : resolve(address as string),
        ),
      );
    await expect(lookup('ENOTFOUND')).rejects.toThrow(/^db.internal does not resolve to a public address$/);
    await expect(lookup('EAI_AGAIN')).rejects.toThrow(/EAI_AGAIN/);
  });

  it('refuses, when a URL is configured, a name of ours without telling its address', async () => {
    const problem = await resolvedUrlProblem('https://localhost:8443/hooks', { allowLoopbackHttp: false });
    expect(problem).toBe('its host does not resolve to a public address');
    expect(await resolvedUrlProblem('https://localhost:8443/hooks', { allowLoopbackHttp: true })).toBeUndefined();
  });

  it('resolves a local name within its time, never on more than two threads at once, nor once its caller gave up', async () => {
    let inFlight = 0;
    let most = 0;
    const pending: (() => void)[] = [];
    // A name server that answers only when told to.
    const slow = (_host: string, _options: unknown, callback: (err: null, addresses: LookupAddress[]) => void) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      pending.push(() => {
        inFlight -= 1;
        callback(null, [{ address: '93.184.216.34', family: 4 }]);
      });
    };
    const resolve = boundedResolver(slow, 50, 2);
    const asked = Array.from({ length: 5 }, (_, i) => resolve(`host-${i}.example`).catch((err: Error) => err));
    const answers = await Promise.all(asked);
    expect(answers.every((a) => a instanceof Error && /did not resolve within 50 ms/.test(a.message))).toBe(true);
    expect(most).toBe(2);
    // The name server answers at last: the three queued are not looked up, their callers having gone.
    pending.splice(0).forEach((answer) => answer());
    await new Promise((r) => setImmediate(r));
    expect(inFlight).toBe(0);
    expect(pending).toEqual([]);
    // A caller still waiting is answered.
    const waiting = resolve('host-5.example');
    await new Promise((r) => setImmediate(r));
    pending.splice(0).forEach((answer) => answer());
    expect(await waiting).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });
});
