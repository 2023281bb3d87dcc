// `npm run fuzz [-- --seconds N]`: schemathesis (from PyPI) against the running API, generated from its
// own /openapi.json, once as a tenant key and once as an account key. It fails on any 5xx, any answer
// that does not match the document (status, content type, headers, body), any request the document
// forbids that the API accepts, any route that lets a request in without credentials, and any answer
// showing another tenant's data. CI runs a bounded pass; see the README for a longer one.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { loadConfig } from '../config.js';
import { startLocalStack, type LocalStack } from './local-stack.js';

const SCHEMATHESIS_VERSION = '4.32.5';
// Every check but one: positive_data_acceptance expects every request the document allows to
// succeed, and the document cannot state every rule (a cursor must be one the API issued, a due
// date not before its open date, an amount's precision depends on its currency, 2027-02-30 is no day).
const EXCLUDED_CHECKS = 'positive_data_acceptance';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' } } });
const seconds = Number(values.seconds);
const config = loadConfig();
const projectRoot = fileURLToPath(new URL('..', import.meta.url));
const stops: (() => Promise<unknown>)[] = [];

function ensureSchemathesis(): string {
  const venv = join(config.cacheDir, `schemathesis-${SCHEMATHESIS_VERSION}`);
  const binary = join(venv, 'bin', 'schemathesis');
  if (existsSync(binary)) return binary;
  console.log(`fuzz: installing schemathesis ${SCHEMATHESIS_VERSION} from PyPI into ${venv}`);
  for (const [command, args] of [
    ['python3', ['-m', 'venv', venv]],
    [join(venv, 'bin', 'pip'), ['install', '--quiet', `schemathesis==${SCHEMATHESIS_VERSION}`]],
  ] as const) {
    const result = spawnSync(command, args, { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed`);
  }
  return binary;
}

async function main(): Promise<number> {
  const schemathesis = ensureSchemathesis();
  const stack = await startLocalStack(config, { rateLimitPerMinute: 10_000_000, accessTokenTtlSeconds: 3 * 3600 });
  stops.unshift(() => stack.stop());
  const { api } = stack;

  // The caller's own account and tenant, and another's whose data must never show.
  const caller = clientsOf(api.url, await stack.newTenant('fuzz account'));
  const other = clientsOf(api.url, await stack.newTenant('other account'));
  const foreignOrderRef = `foreign-${randomUUID()}`;
  const foreignMarker = `marker-${randomUUID()}`;
  const foreignOrder = await other.tenant.request<{ orderId: string }>('POST', '/v1/order-management', {
    body: {
      orderRef: foreignOrderRef,
      customerRef: 'ORD-2027-0001', // the document's example: the fuzzer will ask for it
      metadata: { marker: foreignMarker },
      instructions: [
        {
          instructionRef: 'a',
          direction: 'DEBIT',
          amount: '1.00',
          currency: 'EUR',
          country: 'GB',
          openDate: '2031-01-01',
          dueDate: '2031-01-02',
        },
      ],
    },
  });
  if (foreignOrder.status !== 202)
    throw new Error(`could not create the foreign order: ${JSON.stringify(foreignOrder.body)}`);
  const markers = [
    other.accountId,
    other.tenantId,
    other.publicKey,
    foreignOrderRef,
    foreignMarker,
    foreignOrder.body.orderId,
  ];

  const reportDir = mkdtempSync(join(tmpdir(), 'fuzz-report-'));
  const runs = [
    {
      scope: 'tenant',
      token: await caller.tenant.accessToken(),
      header: `x-tenant-id: ${caller.tenantId}`,
      paths: '^/v1/(?!account|identity)',
    },
    {
      scope: 'account',
      token: await caller.account.accessToken(),
      header: `x-account-id: ${caller.accountId}`,
      paths: '^/v1/account',
    },
  ];
  let failed = false;
  for (const run of runs) {
    console.log(`fuzz: ${run.scope} routes for ${seconds} s`);
    mkdirSync(join(reportDir, run.scope), { recursive: true });
    // Schemathesis's report goes to a file, shown only when it fails: it closes with a pytest-style
    // line ("=== 3 warnings in 60s ===") that a CI log reader takes for a test run that ran nothing.
    const outputPath = join(reportDir, run.scope, 'schemathesis.txt');
    const output = createWriteStream(outputPath);
    await new Promise((resolve) => output.once('open', resolve));
    // Not spawnSync: the API answering it runs in this process.
    const child = spawn(
      schemathesis,
      [
        'run',
        `${api.url}/openapi.json`,
        '--include-path-regex',
        run.paths,
        '-H',
        `Authorization: Bearer ${run.token}`,
        '-H',
        run.header,
        '--checks',
        'all',
        '--exclude-checks',
        EXCLUDED_CHECKS,
        '--max-time',
        String(seconds),
        // Python 3.11's parser is not thread-safe under load: one worker.
        '--workers',
        '1',
        '--generation-database',
        'none',
        '--report',
        'junit',
        '--report-dir',
        join(reportDir, run.scope),
        '--no-color',
      ],
      {
        stdio: ['ignore', output, output],
        env: {
          ...process.env,
          PYTHONPATH: join(projectRoot, 'scripts', 'fuzz'),
          SCHEMATHESIS_HOOKS: 'hooks',
          FOREIGN_MARKERS: markers.join(','),
        },
      },
    );
    const status = await new Promise((resolve) => child.once('exit', resolve));
    output.close();
    const report = readFileSync(outputPath, 'utf8');
    if (status !== 0) {
      failed = true;
      console.log(report);
    } else {
      const cases = /Test cases:\s*\n\s*(.+)/.exec(report)?.[1]?.trim() ?? 'no count printed';
      console.log(`fuzz: ${run.scope} routes clean (test cases: ${cases.replace(/,/g, ';')}); report in ${outputPath}`);
    }
  }
  console.log(`fuzz: ${failed ? 'FAILED' : 'passed'} (reports in ${reportDir})`);
  return failed ? 1 : 0;
}

function clientsOf(baseUrl: string, { account, tenant }: Awaited<ReturnType<LocalStack['newTenant']>>) {
  return {
    accountId: account.accountId,
    tenantId: tenant.tenantId,
    publicKey: tenant.publicKey,
    account: new PaymentSchedulerClient({ baseUrl, ...account }),
    tenant: new PaymentSchedulerClient({
      baseUrl,
      publicKey: tenant.publicKey,
      privateKey: tenant.privateKey,
      tenantId: tenant.tenantId,
    }),
  };
}

let code = 1;
try {
  code = await main();
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
}
process.exit(code);
