import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../config.js';
import { startEmbeddedDatabase } from '../../db/embedded-database.js';
import { openDatabase } from '../../db/orm.js';
import { freePort } from '../../observability/free-port.js';
import { ensureTemporalCli } from '../../scripts/temporal/cli-binary.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { ensureTimeSkippingServer } from '../../scripts/temporal/test-server.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../../orders/contract/search-attributes.js';
import { bundlePaymentWorkflows } from '../../worker/create-worker.js';
import { laneCount } from './lane-count.js';
import type { Lane } from './lanes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The services of each lane, by vitest worker number less one (test/support/lanes.ts). */
    lanes: Lane[];
    databasePoolSize: number;
    timeSkippingServerPath: string;
    /** The workflow code bundled for the run (test/support/workflow-bundle.ts). */
    workflowBundlePath: string;
  }
}

/**
 * Real services for the whole run, one set per lane of test files: PostgreSQL (DATABASE_URL, a
 * database of its own on the same server for each further lane; or an embedded PGlite server when it
 * is unset), a Temporal server (TEMPORAL_ADDRESS, as CI's run on the production topology sets it,
 * or else a dev server per lane), the Java time-skipping server made ready for workflow tests, and
 * the workflow code bundled once for them all (again before each rerun in watch mode).
 */
export default async function setup(project: TestProject) {
  const config = loadConfig();
  const teardown: (() => Promise<unknown>)[] = [];
  const lanes = laneCount();
  if (lanes > 1 && process.env.TEMPORAL_ADDRESS)
    throw new Error('TEMPORAL_ADDRESS names one Temporal server: run its tests in one lane (TEST_LANES=1)');

  const poolSize = process.env.DATABASE_URL ? 5 : 1;
  const databaseOf = async (lane: number) => {
    const url = process.env.DATABASE_URL;
    if (!url) {
      const port = await freePort();
      const embedded = await startEmbeddedDatabase(
        port,
        join(tmpdir(), `payment-scheduler-test-${process.pid}-${lane}`),
      );
      teardown.push(() => embedded.stop());
      console.log('tests use an embedded PGlite database (npm test uses PostgreSQL unless TEST_DATABASE=pglite)');
      return embedded.url;
    }
    if (lane === 1) return url;
    // A further lane's database is new each run, as CI's is: nothing an earlier run left can leak in.
    const laneUrl = new URL(url);
    const name = `${laneUrl.pathname.slice(1)}_lane${lane}`;
    const admin = new pg.Client(url);
    await admin.connect();
    try {
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.query(`create database "${name}"`);
    } finally {
      await admin.end();
    }
    laneUrl.pathname = `/${name}`;
    return laneUrl.toString();
  };
  const temporalOf = async () => {
    const address = process.env.TEMPORAL_ADDRESS;
    if (address) {
      const connection = await Connection.connect({ address });
      await registerSearchAttributes(connection, 'default', ORDER_SEARCH_ATTRIBUTES);
      await connection.close();
      console.log(`tests use the Temporal server at ${address}`);
      return address;
    }
    const devServer = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: ensureTemporalCli(config),
        ip: '127.0.0.1',
        searchAttributes: ORDER_SEARCH_ATTRIBUTES,
        // Its warnings (a slow call while a test holds a worker down on purpose) are noise in a passing run.
        log: { format: 'pretty', level: 'error' },
      },
    });
    teardown.push(() => devServer.teardown());
    return devServer.address;
  };
  const laneOf = async (lane: number): Promise<Lane> => {
    const [databaseUrl, temporalAddress] = await Promise.all([databaseOf(lane), temporalOf()]);
    const orm = await openDatabase({ url: databaseUrl, poolSize, migrate: true, log: () => undefined });
    await orm.close();
    return { databaseUrl, temporalAddress };
  };

  const timeSkipping = ensureTimeSkippingServer(config.cacheDir);
  const bundleDir = await mkdtemp(join(tmpdir(), 'payment-scheduler-workflows-'));
  teardown.push(() => rm(bundleDir, { recursive: true, force: true }));
  const workflowBundlePath = join(bundleDir, 'workflow-bundle.js');
  // Webpack's report of the bundle is noise in a test run.
  const bundle = async () =>
    writeFile(workflowBundlePath, (await bundlePaymentWorkflows(new DefaultLogger('WARN'))).code);
  project.onTestsRerun(bundle);

  const [lanesReady] = await Promise.all([
    Promise.all(Array.from({ length: lanes }, (_, i) => laneOf(i + 1))),
    bundle(),
  ]);
  project.provide('lanes', lanesReady);
  project.provide('databasePoolSize', poolSize);
  project.provide('timeSkippingServerPath', timeSkipping.type === 'existing-path' ? timeSkipping.path : '');
  project.provide('workflowBundlePath', workflowBundlePath);

  return async () => {
    for (const stop of teardown.reverse()) await stop();
  };
}
