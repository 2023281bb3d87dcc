import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** Where the Temporal server keeps its state, on a PostgreSQL server. */
export interface TemporalDatabases {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Histories, timers, task queues. */
  history: string;
  /** The searchable list of workflows (SQL advanced visibility: custom search attributes work). */
  visibility: string;
}

/** The Temporal databases on the server of `databaseUrl`, beside the application's database. */
export function temporalDatabasesOn(
  databaseUrl: string,
  names = { history: 'temporal', visibility: 'temporal_visibility' },
): TemporalDatabases {
  const url = new URL(databaseUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password),
    ...names,
  };
}

/** Drops the server's databases, and with them every workflow it ran (CI starts each run from nothing). */
export async function dropTemporalDatabases(db: TemporalDatabases, adminUrl: string): Promise<void> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  try {
    for (const name of [db.history, db.visibility])
      await admin.query(`drop database if exists "${name.replaceAll('"', '""')}" with (force)`);
  } finally {
    await admin.end();
  }
}

/**
 * Creates the server's two databases when missing and brings their schemas to the version the
 * binaries expect, with the server's own temporal-sql-tool and schema files (the steps of
 * Temporal's auto-setup): `setup-schema -v 0.0` (a no-op once done), then `update-schema` over the
 * versioned folder (applies only what is newer). Safe to run on every start.
 */
export async function prepareTemporalDatabases(
  db: TemporalDatabases,
  sqlTool: string,
  schemaDir: string,
  adminUrl: string,
): Promise<void> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  try {
    for (const name of [db.history, db.visibility]) {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount === 0) await admin.query(`create database "${name.replaceAll('"', '""')}"`);
    }
  } finally {
    await admin.end();
  }
  for (const [name, folder] of [
    [db.history, 'temporal'],
    [db.visibility, 'visibility'],
  ] as const) {
    const common = ['--plugin', 'postgres12', '--ep', db.host, '-p', String(db.port), '-u', db.user, '--db', name];
    const env = { ...process.env, SQL_PASSWORD: db.password };
    try {
      await run(sqlTool, [...common, 'setup-schema', '-v', '0.0'], { env });
      await run(sqlTool, [...common, 'update-schema', '-d', join(schemaDir, folder, 'versioned')], { env });
    } catch (err) {
      const { stderr, stdout } = err as { stderr?: string; stdout?: string };
      throw new Error(
        `temporal-sql-tool could not prepare database ${name}: ${(stderr || stdout || String(err)).slice(-2000)}`,
      );
    }
  }
}
