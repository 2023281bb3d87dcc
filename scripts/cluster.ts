// `npm run cluster`: the production topology on this machine, without Docker (README, "The
// production topology"): the Temporal server on PostgreSQL with its UI, two workers, two API
// processes and the sandbox provider, each its own process. Needs DATABASE_URL (PostgreSQL).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { loadOrCreateMasterKeyFile } from '../db/master-key-file.js';
import { openDatabase } from '../db/orm.js';
import { ensureTemporalServerBinaries, TEMPORAL_SERVER_VERSION } from './temporal/server-binaries.js';
import { portsAround } from './temporal/server-config.js';
import { startCluster, type Cluster } from './cluster/topology.js';
import { firstRunMessage } from './first-run.js';

const { values: flags } = parseArgs({
  options: { 'temporal-only': { type: 'boolean' }, 'reset-temporal': { type: 'boolean' } },
});
const config = loadConfig();
const log = (line: string) => console.log(`cluster: ${line}`);

if (!config.databaseUrl) {
  console.error(
    'npm run cluster needs PostgreSQL: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/payments).\n' +
      'On Debian, `export DATABASE_URL=$(bash scripts/ensure-postgres.sh | tail -n 1)` installs and starts one.',
  );
  process.exit(2);
}
const databaseUrl = config.databaseUrl;
const dataDir = join(config.dataDir, 'cluster');
mkdirSync(dataDir, { recursive: true });
const masterKeys = config.masterKey
  ? { current: config.masterKey, previous: config.masterKeyPrevious }
  : loadOrCreateMasterKeyFile(join(config.dataDir, 'master.key'));

let cluster: Cluster | undefined;
let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await cluster?.stop();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  cluster = await startCluster({
    databaseUrl,
    temporalDatabases: config.temporalDatabases,
    temporalOnly: flags['temporal-only'],
    resetTemporal: flags['reset-temporal'],
    binaries: ensureTemporalServerBinaries(config.cacheDir, log),
    dataDir,
    masterKeys,
    ports: {
      apis: [config.apiPort, config.apiPort + 1],
      sandbox: config.sandboxPort,
      temporal: portsAround(config.temporalPort),
      ui: config.temporalUiPort,
    },
    logLevel: config.logLevel,
    log,
  });
  if (flags['temporal-only']) {
    console.log(`
The production topology's Temporal server is running (no application processes).
  Temporal UI    ${cluster.uiUrl}   (namespace default)
  Temporal       ${cluster.temporalAddress}   (server ${TEMPORAL_SERVER_VERSION} on PostgreSQL, SQL visibility)
  Logs           ${join(dataDir, 'logs')}
Ctrl-C stops it.`);
  } else {
    const orm = await openDatabase({ url: databaseUrl, poolSize: 1, log: () => undefined });
    const firstRun = await firstRunMessage(orm, masterKeys, cluster.apiUrls[0], config.dataDir);
    await orm.close();
    console.log(`
The production topology is running.
  API            ${cluster.apiUrls.join('  ')}   (two processes; docs at /docs)
  Temporal UI    ${cluster.uiUrl}   (namespace default)
  Temporal       ${cluster.temporalAddress}   (server ${TEMPORAL_SERVER_VERSION} on PostgreSQL, SQL visibility)
  Workers        ${cluster.workers.length} processes
  Sandbox PSP    ${cluster.sandboxUrl}
  Logs           ${join(dataDir, 'logs')}

${firstRun}
Ctrl-C stops everything.`);
  }
  // A process that dies is reported (a deployment's supervisor would restart it).
  const reported = new Map<string, number>();
  setInterval(() => {
    for (const member of cluster?.all() ?? []) {
      const exits = member.unexpectedExits.length;
      if (exits > (reported.get(member.name) ?? 0)) {
        reported.set(member.name, exits);
        const { code, signal } = member.unexpectedExits[exits - 1];
        log(`${member.name} exited (${signal ?? `code ${code}`}); see ${join(dataDir, 'logs', `${member.name}.log`)}`);
      }
    }
  }, 2000).unref();
  await new Promise(() => undefined);
} catch (err) {
  console.error(`cluster: ${(err as Error).message}`);
  await shutdown(1);
}
