import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { startEmbeddedDatabase } from '../../db/embedded-database.js';
import { freePort } from '../../observability/free-port.js';
import { lane } from './lanes.js';

export interface FreshDatabase {
  url: string;
  poolSize: number;
  drop(): Promise<void>;
}

/**
 * A database of its own, for a test that must see every row (a dump) or change every row (a
 * rotation) without touching the other test files' data: a new database on the PostgreSQL server
 * when the run has one, otherwise a new in-memory embedded database.
 */
export async function freshDatabase(): Promise<FreshDatabase> {
  if (inject('databasePoolSize') === 1) {
    const embedded = await startEmbeddedDatabase(await freePort());
    return { url: embedded.url, poolSize: 1, drop: () => embedded.stop() };
  }
  const server = new URL(lane().databaseUrl);
  const name = `test_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client(lane().databaseUrl);
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  server.pathname = `/${name}`;
  return {
    url: server.toString(),
    poolSize: 4,
    async drop() {
      const client = new pg.Client(lane().databaseUrl);
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
