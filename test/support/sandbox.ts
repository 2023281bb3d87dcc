import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const LISTENING = /sandbox provider listening on (http:\/\/\S+:(\d+))/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Enough of the process's output to explain a failed start. */
const KEPT_OUTPUT_CHARS = 20_000;

export interface SandboxLedgerItem {
  /** A payment, or a refund, return or chargeback of the payment `paymentRef` names. */
  kind: 'PAYMENT' | 'REFUND' | 'RETURN' | 'CHARGEBACK';
  idempotencyKey: string;
  providerRef: string;
  paymentRef: string | null;
  appId: string;
  tenantId: string;
  orderRef: string;
  instructionRef: string;
  direction: 'DEBIT' | 'CREDIT';
  amountMinor: string;
  currency: string;
  status: 'PENDING' | 'SETTLED' | 'DECLINED' | 'RETURNED' | 'CHARGED_BACK' | 'SUCCEEDED' | 'FAILED';
  code: string | null;
  /** Payments: what the merchant paid with (a test instrument, or a hosted form's token). */
  instrument?: string;
  createdAt: string;
}

/**
 * What the provider says moved, net, in minor units: payments that settled (even if taken back later),
 * less refunds that succeeded, less returns and chargebacks. The read model's net must equal it.
 */
export function providerNet(items: SandboxLedgerItem[]): bigint {
  return items.reduce((sum, item) => {
    const amount = BigInt(item.amountMinor);
    if (item.kind === 'PAYMENT')
      return ['SETTLED', 'RETURNED', 'CHARGED_BACK'].includes(item.status) ? sum + amount : sum;
    if (item.kind === 'REFUND') return item.status === 'SUCCEEDED' ? sum - amount : sum;
    return sum - amount;
  }, 0n);
}

export interface RunningSandbox {
  url: string;
  port: number;
  dataDir: string;
  /** Everything the provider's process has written (stdout and stderr), across restarts: what the secrets-in-logs checks read. */
  output(): string;
  /** What the provider recorded, in creation order. */
  ledger(filter?: { tenantId?: string; orderRef?: string }): Promise<SandboxLedgerItem[]>;
  /** How long the provider takes to answer each API call from now on (its `PUT /latency` switch). */
  setLatency(ms: number): Promise<void>;
  /** Settles a payment (or refund) the bank holds PENDING (`bank_held`), once it holds it. */
  settleHeld(id: string): Promise<void>;
  /** Settles an order's one debit the bank holds (`bank_held`), once it is in the ledger; says which. */
  settleHeldDebit(order: { tenantId: string; orderRef: string }): Promise<SandboxLedgerItem>;
  /** Has the bank confirm a mandate it holds PENDING (`POST /mandates/{ref}/confirm`); fails unless it did. */
  confirmMandate(mandateRef: string): Promise<void>;
  /** Stops the process (SIGTERM) and starts it again on the same port and ledger. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface StartSandboxOptions {
  port?: number;
  /** A new temporary directory (removed on close) unless given. */
  dataDir?: string;
  settleMs?: number;
  hangMs?: number;
  returnMs?: number;
  /** How long every API call takes to be answered (SANDBOX_LATENCY_MS). */
  latencyMs?: number;
}

/**
 * The sandbox provider as its own process, as `npm start` and a deployment run it: its ledger is on
 * disk, so a test can kill it and see that nothing is forgotten. Quiet unless it fails to start.
 */
export async function startSandbox(options: StartSandboxOptions = {}): Promise<RunningSandbox> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sandbox-provider-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SANDBOX_HOST: '127.0.0.1',
    SANDBOX_DATA_DIR: dataDir,
    ...(options.settleMs === undefined ? {} : { SANDBOX_SETTLE_MS: String(options.settleMs) }),
    ...(options.hangMs === undefined ? {} : { SANDBOX_HANG_MS: String(options.hangMs) }),
    ...(options.returnMs === undefined ? {} : { SANDBOX_RETURN_MS: String(options.returnMs) }),
    ...(options.latencyMs === undefined ? {} : { SANDBOX_LATENCY_MS: String(options.latencyMs) }),
  };

  const written: string[] = [];
  let running = await spawnSandbox({ ...env, SANDBOX_PORT: String(options.port ?? 0) }, written);
  const { url, port } = running;
  const sandbox: RunningSandbox = {
    url,
    port,
    dataDir,
    output: () => written.join(''),
    async ledger(filter = {}) {
      const query = new URLSearchParams(
        Object.entries(filter).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      const res = await fetch(`${url}/ledger?${query.toString()}`);
      if (!res.ok) throw new Error(`GET /ledger answered ${res.status}`);
      return ((await res.json()) as { items: SandboxLedgerItem[] }).items;
    },
    async setLatency(ms) {
      const res = await fetch(`${url}/latency`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms }),
      });
      if (res.status !== 204) throw new Error(`PUT /latency answered ${res.status}`);
    },
    async settleHeld(id) {
      await eventually(
        () => fetch(`${url}/held/${id}/settle`, { method: 'POST' }).then((res) => res.status),
        (status) => status === 202,
        { what: `the bank to settle ${id}, which it holds` },
      );
    },
    async settleHeldDebit(order) {
      const [debit] = await eventually(
        () => sandbox.ledger(order),
        (items) => items.length === 1,
        { what: `the debit of ${order.orderRef} at the bank` },
      );
      await sandbox.settleHeld(debit.providerRef);
      return debit;
    },
    async confirmMandate(mandateRef) {
      const res = await fetch(`${url}/mandates/${mandateRef}/confirm`, { method: 'POST' });
      if (res.status !== 202)
        throw new Error(`POST /mandates/${mandateRef}/confirm answered ${res.status}: ${await res.text()}`);
    },
    async restart() {
      await stop(running.child);
      running = await spawnSandbox({ ...env, SANDBOX_PORT: String(port) }, written);
    },
    async close() {
      await stop(running.child);
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return sandbox;
}

async function spawnSandbox(
  env: NodeJS.ProcessEnv,
  written: string[],
): Promise<{ child: ChildProcess; url: string; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/sandbox/main.ts'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // Read everything the process writes for as long as it runs: a pipe nobody drains would stall it.
  const keep = (chunk: Buffer) => {
    written.push(chunk.toString('utf8'));
    output = (output + chunk.toString('utf8')).slice(-KEPT_OUTPUT_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  return new Promise((resolve, reject) => {
    const settle = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onListening);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const fail = (why: string) => {
      settle();
      child.kill('SIGKILL');
      reject(new Error(`the sandbox provider did not start: ${why}\n${output}`));
    };
    const onListening = () => {
      const match = LISTENING.exec(output);
      if (!match) return;
      settle();
      resolve({ child, url: match[1], port: Number(match[2]) });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`it exited (${signal ?? `code ${code}`})`);
    const onError = (error: Error) => fail(error.message);
    const timer = setTimeout(() => fail(`no listening line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.stdout?.on('data', onListening);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** SIGTERM, as a deployment stops it; SIGKILL if it does not stop in time. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
