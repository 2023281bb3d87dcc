import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../observability/free-port.js';

export interface PrivatePostgres {
  /** postgres://… of a database `payments` on this server. */
  url: string;
  /** Stops the server (fast shutdown: sessions are cut, as in a failover or a restart). */
  stop(): void;
  start(): void;
  close(): void;
}

/** The PostgreSQL server binaries of Debian's packages, if installed. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  return readdirSync(root)
    .map((version) => join(root, version, 'bin'))
    .find((dir) => existsSync(join(dir, 'pg_ctl')));
}

/**
 * A PostgreSQL server of the test's own, in a temporary directory on a free port, which the test
 * may stop and start without disturbing other tests' database. Run as the postgres user when the
 * tests run as root (PostgreSQL refuses root).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'private-pg-'));
  const dataDir = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  // The postgres user must reach the directory.
  chmodSync(dir, 0o777);
  const run = (command: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : command, asRoot ? ['-u', 'postgres', '--', command, ...args] : args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_connections=300`;
  const start = () =>
    run(join(bin, 'pg_ctl'), ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', options, 'start']);
  const stop = (mode: 'fast' | 'immediate') =>
    run(join(bin, 'pg_ctl'), ['-D', dataDir, '-w', '-t', '60', '-m', mode, 'stop']);
  start();
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query('create database payments');
  await admin.end();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/payments`,
    stop: () => stop('fast'),
    start,
    close() {
      try {
        stop('immediate');
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
