import type { MikroORM } from '@mikro-orm/postgresql';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretOpenError, type SecretBox } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { InstallationCache } from '../../orders/activities/installation-cache.js';

/** The cache with its database read replaced by reads the test answers one by one. */
class HeldReads extends InstallationCache {
  readonly reads: { tenantId: string; answer: (app: InstalledApp) => void; fail: (err: Error) => void }[] = [];
  protected override readonly readLimitMs = 100;
  constructor() {
    super(undefined as unknown as MikroORM, undefined as unknown as SecretBox);
  }
  protected override read(tenantId: string): Promise<InstalledApp | undefined> {
    return new Promise((answer, fail) => this.reads.push({ tenantId, answer, fail }));
  }
}

const installed = (key: string): InstalledApp => ({ configuration: {}, secrets: { key } });
/** Once the promises already answered have run their callbacks. */
const settled = () => new Promise((resolve) => setImmediate(resolve));
const keyOf = async (got: Promise<InstalledApp | undefined>) => (await got)?.secrets.key;

/** A cache on the test's clock that has read `t1`'s installation, 'first', once. */
async function readOnce(): Promise<HeldReads> {
  vi.useFakeTimers({ toFake: ['Date'] });
  const cache = new HeldReads();
  const firstRead = cache.get('t1', 'app');
  cache.reads[0].answer(installed('first'));
  expect(await keyOf(firstRead)).toBe('first');
  return cache;
}

/** What `answer` gives if it comes before a read could have been waited for (20 ms, real time). */
const atOnce = (answer: Promise<unknown>) =>
  Promise.race([answer, new Promise((resolve) => setTimeout(() => resolve('waited for the read'), 20))]);

afterEach(() => vi.useRealTimers());

describe('the installation cache', () => {
  it('reads an installation once for all the calls asking while it is read', async () => {
    const cache = new HeldReads();
    const asking = Array.from({ length: 20 }, () => cache.get('t1', 'app'));
    const other = cache.get('t2', 'app');
    expect(cache.reads.map((r) => r.tenantId)).toEqual(['t1', 't2']);
    cache.reads[0].answer(installed('first'));
    cache.reads[1].answer(installed('other'));
    for (const got of await Promise.all(asking)) expect(got?.secrets.key).toBe('first');
    expect(await keyOf(other)).toBe('other');
    // Fresh for a minute: no read.
    expect(await keyOf(cache.get('t1', 'app'))).toBe('first');
    expect(cache.reads).toHaveLength(2);
  });

  it('reads it again past its minute before it is used, and gives the copy before only while reads fail', async () => {
    const cache = await readOnce();

    // Past its minute: the call waits for the read, and pays with what it finds (a provider moved meanwhile).
    vi.setSystemTime(Date.now() + 60_000);
    const afterChange = [cache.get('t1', 'app'), cache.get('t1', 'app')];
    expect(cache.reads).toHaveLength(2);
    cache.reads[1].answer(installed('second'));
    expect(await Promise.all(afterChange.map(keyOf))).toEqual(['second', 'second']);

    // The database away: the read fails, and the copy before is given.
    vi.setSystemTime(Date.now() + 60_000);
    const duringOutage = cache.get('t1', 'app');
    cache.reads[2].fail(new Error('the database is away'));
    expect(await keyOf(duringOutage)).toBe('second');
    // For a minute after, at once (a read is tried, and waited for by none); then a read is waited for again.
    expect(await atOnce(keyOf(cache.get('t1', 'app')))).toBe('second');
    expect(cache.reads).toHaveLength(4);
    cache.reads[3].fail(new Error('the database is away'));
    await settled();
    vi.setSystemTime(Date.now() + 60_000);
    const recovered = cache.get('t1', 'app');
    expect(cache.reads).toHaveLength(5);
    cache.reads[4].answer(installed('third'));
    expect(await keyOf(recovered)).toBe('third');

    // One never read waits for its read, and is told when it fails.
    const never = cache.get('t3', 'app');
    cache.reads[5].fail(new Error('the database is away'));
    await expect(never).rejects.toThrow('the database is away');
  });

  it('gives the copy before once a read of it hangs past its limit', async () => {
    const cache = await readOnce();
    vi.setSystemTime(Date.now() + 60_000);
    // Never answered: given up at the limit (100 ms here), and the copy before is used; then at once.
    expect(await keyOf(cache.get('t1', 'app'))).toBe('first');
    expect(await atOnce(keyOf(cache.get('t1', 'app')))).toBe('first');
  });

  it('tells secrets it cannot open, and never gives the copy before in their place', async () => {
    const cache = await readOnce();
    // Changed since (its secrets sealed again), and this worker cannot open them: no outage.
    vi.setSystemTime(Date.now() + 60_000);
    const changed = cache.get('t1', 'app');
    cache.reads[1].fail(new SecretOpenError('no master key opens it'));
    await expect(changed).rejects.toThrow(SecretOpenError);
    const again = cache.get('t1', 'app');
    expect(cache.reads).toHaveLength(3);
    cache.reads[2].fail(new SecretOpenError('no master key opens it'));
    await expect(again).rejects.toThrow(SecretOpenError);
  });

  it('gives up a read that hangs, and reads again at the next call', async () => {
    const cache = new HeldReads();
    // Never answered: given up at the limit, and told as a failure to a call with nothing to fall back on.
    await expect(cache.get('t1', 'app')).rejects.toThrow(/not read within 100 ms/);
    const next = cache.get('t1', 'app');
    expect(cache.reads).toHaveLength(2);
    cache.reads[1].answer(installed('first'));
    expect(await keyOf(next)).toBe('first');
  });
});
