// A pooled connection whose database goes silent (no FIN, no RST) must fail what waits on it, not
// hold it for ever: the pool's sockets probe an idle peer (db/orm-config.ts).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/orm.js';
import { lane } from '../support/lanes.js';

const execFileAsync = promisify(execFile);

let orm: MikroORM;

beforeAll(async () => {
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: 1 });
});
afterAll(async () => {
  await orm?.close(true);
});

/** The kernel's timers on the TCP connection from this local port (`ss -o`), such as `timer:(keepalive,…)`. */
async function timersOf(localPort: number): Promise<string> {
  const { stdout } = await execFileAsync('ss', ['-tnoH', 'state', 'established', `( sport = :${localPort} )`]);
  return stdout;
}

describe('a pooled database connection', () => {
  it('has the kernel probe its idle peer (TCP keep-alive), so a silent drop fails it', async () => {
    await orm.em.getConnection().execute('select 1');
    const knex = orm.em.getConnection().getKnex();
    const client = (await knex.client.acquireConnection()) as { connection: { stream: Socket } };
    try {
      const socket = client.connection.stream;
      expect(socket.remoteAddress).toBeDefined();
      expect(await timersOf(socket.localPort!)).toMatch(/timer:\(keepalive,/);
    } finally {
      await knex.client.releaseConnection(client);
    }
  });
});
