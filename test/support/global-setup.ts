import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../config.js';
import { startEmbeddedDatabase } from '../../db/embedded-database.js';
import { openDatabase } from '../../db/orm.js';
import { ensureTemporalCli } from '../../scripts/temporal/cli-binary.js';
import { registerSearchAttributes } from '../../temporal/search-attribute-registration.js';
import { ensureTimeSkippingServer } from '../../scripts/temporal/test-server.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../../orders/contract/search-attributes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    databasePoolSize: number;
    temporalAddress: string;
    timeSkippingServerPath: string;
  }
}

/**
 * Real services for the whole run: PostgreSQL (DATABASE_URL, or an embedded PGlite server when it
 * is unset), a Temporal server (TEMPORAL_ADDRESS, as CI's run on the production topology sets it,
 * or else a dev server), and the Java time-skipping server made ready for workflow tests.
 */
export default async function setup(project: TestProject) {
  const config = loadConfig();
  const teardown: (() => Promise<unknown>)[] = [];

  let databaseUrl = process.env.DATABASE_URL;
  let poolSize = 5;
  if (!databaseUrl) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const embedded = await startEmbeddedDatabase(port, join(tmpdir(), `payment-scheduler-test-${process.pid}`));
    teardown.push(() => embedded.stop());
    databaseUrl = embedded.url;
    poolSize = 1;
    console.log(`tests use an embedded PGlite database (set DATABASE_URL to use PostgreSQL)`);
  }
  const orm = await openDatabase({ url: databaseUrl, poolSize, migrate: true, log: () => undefined });
  await orm.close();

  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  if (temporalAddress) {
    const connection = await Connection.connect({ address: temporalAddress });
    await registerSearchAttributes(connection, 'default', ORDER_SEARCH_ATTRIBUTES);
    await connection.close();
    console.log(`tests use the Temporal server at ${temporalAddress}`);
  } else {
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
    temporalAddress = devServer.address;
  }

  const timeSkipping = ensureTimeSkippingServer(config.cacheDir);

  project.provide('databaseUrl', databaseUrl);
  project.provide('databasePoolSize', poolSize);
  project.provide('temporalAddress', temporalAddress);
  project.provide('timeSkippingServerPath', timeSkipping.type === 'existing-path' ? timeSkipping.path : '');

  return async () => {
    for (const stop of teardown.reverse()) await stop();
  };
}
