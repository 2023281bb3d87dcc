import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentSchedulerClient } from '../../client/payment-scheduler-client.js';
import { loadConfig } from '../../config.js';
import { freePort } from '../../observability/free-port.js';
import { orderWorkflowId } from '../../orders/contract/ids.js';
import { ensureTemporalCli } from '../../scripts/temporal/cli-binary.js';
import { launchBrowser } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { findOrderInTemporalUi } from '../support/temporal-ui.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

let dataDir = '';
let child: ChildProcess;
let output = '';
const ports = { api: 0, db: 0, ui: 0 };

/** Starts `npm start` on ports free a moment ago; false when one was taken meanwhile (EADDRINUSE). */
async function startOnFreePorts(cli: ReturnType<typeof ensureTemporalCli>): Promise<boolean> {
  dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
  output = '';
  [ports.api, ports.db, ports.ui] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    API_PORT: String(ports.api),
    EMBEDDED_DB_PORT: String(ports.db),
    SANDBOX_PORT: String(await freePort()),
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(ports.ui),
    TEMPORAL_CLI_PATH: cli.type === 'existing-path' ? cli.path : '',
    LOG_LEVEL: 'warn',
    // CI's second run of the end-to-end tests points everything at the production topology's server.
    ...(process.env.TEMPORAL_ADDRESS ? { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS } : {}),
  };
  // As a user would run it, except that output goes to a pipe (as to a log file), not a terminal.
  child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: projectRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await eventually(
    () => Promise.resolve(output),
    (text) => text.includes('Payment scheduler is running') || child.exitCode !== null,
    {
      what: '`npm start` to come up',
      timeoutMs: 90_000,
    },
  );
  if (child.exitCode === null) return true;
  if (output.includes('EADDRINUSE')) return false;
  throw new Error(`npm start exited: ${output}`);
}

beforeAll(async () => {
  const cli = ensureTemporalCli(loadConfig());
  // The ports are chosen before the Temporal dev server takes ephemeral ports of its own, so one of
  // them can be gone by the time its process listens; that is this test's race, not the product's.
  for (let attempt = 1; !(await startOnFreePorts(cli)); attempt++)
    if (attempt === 3) throw new Error(`npm start found a port in use three times: ${output}`);
}, 300_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
});

describe('npm start', () => {
  it('prints its banner and nothing of webpack, the SDK or the Temporal CLI around it', () => {
    const [before] = output.split('Payment scheduler is running.');
    // At LOG_LEVEL=warn nothing is worth a line before the banner on a healthy start.
    expect(before.trim()).toBe('');
    for (const noise of ['webpack', 'workflow-bundle', 'CLI 0.0.0', 'applied migrations', 'listening on', '[INFO]'])
      expect(output).not.toContain(noise);
    expect(output).toContain(`Metrics        http://127.0.0.1:${ports.api}/metrics`);
  });

  it('shows the first account key once, but never into its output when that is a log', async () => {
    const file = join(dataDir, 'first-account.json');
    expect(output).toContain(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const firstRun = JSON.parse(readFileSync(file, 'utf8')) as {
      accountId: string;
      publicKey: string;
      privateKey: string;
      tenant: { tenantId: string; publicKey: string; privateKey: string };
    };
    expect(output).not.toContain(firstRun.privateKey);
    expect(output).not.toContain(firstRun.tenant.privateKey);

    // The keys work: they are the way in, and the tenant is ready for a first order.
    const baseUrl = `http://127.0.0.1:${ports.api}`;
    const account = new PaymentSchedulerClient({
      baseUrl,
      accountId: firstRun.accountId,
      publicKey: firstRun.publicKey,
      privateKey: firstRun.privateKey,
    });
    expect(
      (await account.request('GET', '/v1/account/tenants')).body.items.map((t: { tenantId: string }) => t.tenantId),
    ).toEqual([firstRun.tenant.tenantId]);
    const tenant = new PaymentSchedulerClient({ baseUrl, ...firstRun.tenant });
    const now = Date.now();
    const order = await tenant.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'first',
        instructions: [
          {
            instructionRef: 'a',
            direction: 'DEBIT',
            amount: '25.00',
            currency: 'EUR',
            country: 'IE',
            openDate: new Date(now).toISOString(),
            dueDate: new Date(now + 1000).toISOString(),
            financialInstrumentId: 'card_ok',
          },
        ],
      },
    });
    expect(order.status).toBe(202);
    const settled = await eventually(
      async () => (await tenant.request('GET', '/v1/order-management/first')).body,
      (o) => o.status === 'COMPLETED',
      { what: 'the first order to settle through npm start', timeoutMs: 30_000 },
    );
    expect(settled.instructions[0]).toMatchObject({ status: 'SETTLED', appId: 'SANDBOX_CARD' });

    // One address has the API's metrics, the worker's and the Temporal SDK's.
    const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
    // (Against the production topology, the cluster's workers may have paid it instead of this process's.)
    if (!process.env.TEMPORAL_ADDRESS)
      expect(metrics).toMatch(
        /^payment_instructions_total\{direction="DEBIT",app="SANDBOX_CARD",status="SETTLED"\} 1$/m,
      );
    expect(metrics).toMatch(/^http_requests_total\{route="\/v1\/order-management",method="POST",status="202"\} 1$/m);
    expect(metrics).toMatch(/^temporal_worker_task_slots_available\{/m);
  });

  it('lets an operator find that order in the Temporal UI by its OrderRef, open it and see its status', async (test) => {
    const browser = await launchBrowser();
    if (!browser) return test.skip('no chromium installed');
    try {
      const { tenant } = JSON.parse(readFileSync(join(dataDir, 'first-account.json'), 'utf8')) as {
        tenant: { tenantId: string };
      };
      const workflowId = orderWorkflowId(tenant.tenantId, 'first');
      // npm start's own UI, or the production topology's when the tests run against it.
      const uiUrl = process.env.TEMPORAL_UI_URL || `http://127.0.0.1:${ports.ui}`;
      const seen = await findOrderInTemporalUi(
        browser,
        uiUrl,
        'first',
        workflowId,
        process.env.TEMPORAL_UI_URL ? 'temporal-ui-cluster' : 'temporal-ui-npm-start',
      );
      // Other tenants' orders named `first` may share a real server: the filter finds this one among them.
      expect(seen.listed).toContain(workflowId);
      expect(seen.listed.every((id) => id.endsWith('/first'))).toBe(true);
      // Ended, but open through its reversal window (ARCHITECTURE.md, "After settlement"): the order's own status says COMPLETED.
      expect(seen.status).toBe('Running');
    } finally {
      await browser.close();
    }
  });

  it('serves the embedded database on loopback to holders of the password in its data folder only', async () => {
    const password = readFileSync(join(dataDir, 'pglite', 'password'), 'utf8').trim();
    expect(statSync(join(dataDir, 'pglite', 'password')).mode & 0o777).toBe(0o600);
    const refused = new pg.Client({
      host: '127.0.0.1',
      port: ports.db,
      user: 'postgres',
      database: 'postgres',
      password: 'guess',
    });
    await expect(refused.connect()).rejects.toThrow(/password authentication failed/);
    const allowed = new pg.Client({
      host: '127.0.0.1',
      port: ports.db,
      user: 'postgres',
      database: 'postgres',
      password,
    });
    await allowed.connect();
    expect((await allowed.query('select count(*)::int as n from account')).rows[0].n).toBe(1);
    await allowed.end();
  });

  it('keeps one master key, readable by its owner alone', () => {
    const keyFile = join(dataDir, 'master.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('stops cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
  });
});
