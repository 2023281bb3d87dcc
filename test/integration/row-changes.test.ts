import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { RowCache } from '../../db/row-cache.js';
import { RowChanges, type RowChangesLog } from '../../db/row-changes.js';
import { eventually } from '../support/eventually.js';
import { lane } from '../support/lanes.js';

/*
 * A cache that hears row changes from PostgreSQL (db/row-changes.ts), on a table of this test's own
 * carrying the same trigger as security_key. Needs a PostgreSQL server (an embedded PGlite serves
 * one session at a time: the API caches nothing there).
 */
const onPostgres = inject('databasePoolSize') > 1;
const TABLE = 'row_changes_probe';
const APPLICATION = `row-changes-test-${process.pid}`;

let sql: pg.Client;
let changes: RowChanges;
const warnings: string[] = [];
const infos: string[] = [];
const log: RowChangesLog = { warn: (message) => warnings.push(message), info: (message) => infos.push(message) };

/** The database's URL, naming the connection so that the test can find its server process. */
function listenerUrl(application: string): string {
  const url = new URL(lane().databaseUrl);
  url.searchParams.set('application_name', application);
  return url.toString();
}
const serverPids = async (application: string) =>
  (
    await sql.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [application])
  ).rows.map((row) => row.pid);

const valueOf = async (id: string) =>
  (await sql.query<{ value: string }>(`select value from ${TABLE} where id = $1`, [id])).rows[0]?.value;

/** A cache of the probe table that counts its reads of the database. */
function probeCache() {
  const cache = new RowCache<string>(changes, TABLE);
  let loads = 0;
  return {
    read: (id: string) =>
      cache.read(id, () => {
        loads++;
        return valueOf(id);
      }),
    cache,
    loads: () => loads,
  };
}

describe.skipIf(!onPostgres)('row changes heard from PostgreSQL', () => {
  beforeAll(async () => {
    sql = new pg.Client({ connectionString: lane().databaseUrl });
    await sql.connect();
    await sql.query(`drop table if exists ${TABLE}`);
    await sql.query(`create table ${TABLE} (id text primary key, value text not null)`);
    await sql.query(
      `create trigger ${TABLE}_notify after update or delete on ${TABLE} for each row execute function notify_row_change('id')`,
    );
    // Slow to listen again, so that the test can look at it while it is down.
    changes = RowChanges.listen(listenerUrl(APPLICATION), log, { firstRetryMs: 3_000 });
    await eventually(
      () => changes.live,
      (live) => live,
      { what: 'listening' },
    );
  });

  afterAll(async () => {
    await changes?.close();
    await sql?.query(`drop table if exists ${TABLE}`);
    await sql?.end();
  });

  it('keeps a row read once, at most a minute, and drops it when another connection changes it', async () => {
    await sql.query(`insert into ${TABLE} values ('a', 'first')`);
    const probe = probeCache();
    expect(await probe.read('a')).toBe('first');
    expect(await probe.read('a')).toBe('first');
    expect(probe.loads()).toBe(1);
    // Never longer than a minute, notice or not.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      await probe.read('a');
      expect(probe.loads()).toBe(2);
    } finally {
      vi.useRealTimers();
    }

    await sql.query(`update ${TABLE} set value = 'second' where id = 'a'`);
    await eventually(
      () => probe.read('a'),
      (value) => value === 'second',
      { what: 'the changed row', timeoutMs: 5_000, intervalMs: 20 },
    );
    await sql.query(`delete from ${TABLE} where id = 'a'`);
    await eventually(
      () => probe.read('a'),
      (value) => value === undefined,
      { what: 'the deleted row gone', timeoutMs: 5_000, intervalMs: 20 },
    );
  });

  it('hands out a kept row frozen, all the way down: a request cannot change what the next one reads', async () => {
    const cache = new RowCache<{ roles: string[]; rules: { appId: string }[] }>(changes, TABLE);
    const load = () => Promise.resolve({ roles: ['orders:write'], rules: [{ appId: 'SANDBOX_CARD' }] });
    const row = (await cache.read('frozen', load))!;
    expect(() => row.roles.push('tenants:admin')).toThrow(TypeError);
    expect(() => (row.rules[0].appId = 'OTHER')).toThrow(TypeError);
    expect(await cache.read('frozen', load)).toEqual({ roles: ['orders:write'], rules: [{ appId: 'SANDBOX_CARD' }] });
  });

  it('does not keep a row whose read began before a change was heard', async () => {
    await sql.query(`insert into ${TABLE} values ('b', 'old')`);
    const probe = probeCache();
    // As if the row changed while it was read: the notice comes before the read returns.
    const read = await probe.cache.read('b', async () => {
      const value = await valueOf('b');
      probe.cache.forget('b');
      return value;
    });
    expect(read).toBe('old');
    await probe.read('b');
    expect(probe.loads()).toBe(1);
  });

  it('caches nothing while it cannot listen, and keeps rows and hears changes again once it listens anew', async () => {
    await sql.query(`insert into ${TABLE} values ('c', 'before')`);
    const probe = probeCache();
    expect(await probe.read('c')).toBe('before');

    await sql.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [
      APPLICATION,
    ]);
    await eventually(
      () => changes.live,
      (live) => !live,
      { what: 'the lost connection noticed', timeoutMs: 5_000, intervalMs: 10 },
    );
    // Changed while nobody listened: no notice will ever come for it.
    await sql.query(`update ${TABLE} set value = 'unheard' where id = 'c'`);
    expect(await probe.read('c')).toBe('unheard');
    const loadsWhileDown = probe.loads();
    await probe.read('c');
    expect(probe.loads()).toBe(loadsWhileDown + 1);

    await eventually(
      () => changes.live,
      (live) => live,
      { what: 'listening again', timeoutMs: 10_000 },
    );
    expect(await probe.read('c')).toBe('unheard');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not hearing row changes/);
    expect(infos).toEqual(['hearing row changes again; caches are on']);
    // Kept again, and dropped again on the next change: it hears once more.
    const loadsListening = probe.loads();
    await probe.read('c');
    expect(probe.loads()).toBe(loadsListening);
    await sql.query(`update ${TABLE} set value = 'heard' where id = 'c'`);
    await eventually(
      () => probe.read('c'),
      (value) => value === 'heard',
      { what: 'the change after listening again', timeoutMs: 5_000, intervalMs: 20 },
    );
  });

  it('takes a connection that stopped delivering for lost, by its heartbeat, and listens on a new one', async (context) => {
    const application = `${APPLICATION}-heartbeat`;
    const heartbeatWarnings: string[] = [];
    const quiet: RowChangesLog = { warn: (message) => heartbeatWarnings.push(message), info: () => undefined };
    const listener = RowChanges.listen(listenerUrl(application), quiet, { firstRetryMs: 100, heartbeatMs: 1_500 });
    const cache = new RowCache<string>(listener, TABLE);
    try {
      await eventually(
        () => listener.live,
        (live) => live,
        { what: 'listening' },
      );
      const [stuck] = await serverPids(application);
      // Its server process stopped: the connection stays open, and delivers nothing (as a half-open one).
      try {
        process.kill(stuck, 'SIGSTOP');
      } catch {
        return context.skip('the database server runs elsewhere: its process cannot be stopped from here');
      }
      try {
        await eventually(
          () => listener.live,
          (live) => !live,
          { what: 'the silent connection taken for lost', timeoutMs: 15_000, intervalMs: 20 },
        );
        expect(heartbeatWarnings[0]).toMatch(/heartbeat was not heard back/);
        await eventually(
          () => listener.live,
          (live) => live,
          { what: 'listening on a new connection', timeoutMs: 15_000 },
        );
        // A new server process (the stopped one lingers until it runs again and sees its client gone).
        expect((await serverPids(application)).filter((pid) => pid !== stuck)).toHaveLength(1);
        await sql.query(`insert into ${TABLE} values ('d', 'one')`);
        expect(await cache.read('d', () => valueOf('d'))).toBe('one');
        await sql.query(`update ${TABLE} set value = 'two' where id = 'd'`);
        await eventually(
          () => cache.read('d', () => valueOf('d')),
          (value) => value === 'two',
          { what: 'the change heard on the new connection', timeoutMs: 5_000, intervalMs: 20 },
        );
      } finally {
        process.kill(stuck, 'SIGCONT');
        await sql.query('select pg_terminate_backend($1)', [stuck]);
      }
    } finally {
      await listener.close();
    }
  });
});
