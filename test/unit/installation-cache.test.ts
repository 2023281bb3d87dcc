import type { MikroORM } from '@mikro-orm/postgresql';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SecretBox } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { InstallationCache } from '../../orders/activities/installation-cache.js';

/** The cache with its database read replaced by reads the test answers one by one. */
class HeldReads extends InstallationCache {
  readonly reads: { tenantId: string; answer: (app: InstalledApp) => void; fail: (err: Error) => void }[] = [];
  constructor() {
    super(undefined as unknown as MikroORM, undefined as unknown as SecretBox);
  }
  protected override read(tenantId: string): Promise<InstalledApp | undefined> {
    return new Promise((answer, fail) => this.reads.push({ tenantId, answer, fail }));
  }
}

const installed = (key: string): InstalledApp => ({ configuration: {}, secrets: { key } });

afterEach(() => vi.useRealTimers());

describe('the installation cache', () => {
  it('reads an installation once for all the calls asking while it is read, and keeps the last one read through a failed read', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const cache = new HeldReads();
    const asking = Array.from({ length: 20 }, () => cache.get('t1', 'app'));
    const other = cache.get('t2', 'app');
    expect(cache.reads.map((r) => r.tenantId)).toEqual(['t1', 't2']);
    cache.reads[0].answer(installed('first'));
    cache.reads[1].answer(installed('other'));
    for (const got of await Promise.all(asking)) expect(got?.secrets.key).toBe('first');
    expect((await other)?.secrets.key).toBe('other');

    // Fresh for a minute; then read again, once, and a failed read gives every call the last one read.
    await cache.get('t1', 'app');
    expect(cache.reads).toHaveLength(2);
    vi.setSystemTime(Date.now() + 60_000);
    const expired = [cache.get('t1', 'app'), cache.get('t1', 'app')];
    expect(cache.reads).toHaveLength(3);
    cache.reads[2].fail(new Error('the database is away'));
    for (const got of await Promise.all(expired)) expect(got?.secrets.key).toBe('first');

    // The failure is not kept: the next call reads again, and a tenant never read before gets the error.
    const next = cache.get('t1', 'app');
    const never = cache.get('t3', 'app');
    expect(cache.reads).toHaveLength(5);
    cache.reads[3].answer(installed('second'));
    cache.reads[4].fail(new Error('the database is away'));
    expect((await next)?.secrets.key).toBe('second');
    await expect(never).rejects.toThrow('the database is away');
  });
});
