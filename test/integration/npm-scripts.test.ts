import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const LISTENING = /sandbox provider listening on (http:\/\/\S+:\d+)/;
/** The scripts that run a process until it is told to stop. */
const LONG_RUNNING = ['start', 'api', 'worker', 'sandbox', 'cluster'];

describe('npm scripts', () => {
  it('run each long-running process in the place of npm’s shell, so a stop sent to npm reaches it', () => {
    const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const name of LONG_RUNNING) expect(scripts[name], name).toMatch(/^exec /);
  });

  it('stop the process when npm is sent SIGTERM, as a process manager sends it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'npm-sandbox-'));
    // A process group of its own: whatever is left of it is killed at the end, whatever happens.
    const npm = spawn('npm', ['run', '-s', 'sandbox'], {
      cwd: repoRoot,
      detached: true,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SANDBOX_HOST: '127.0.0.1',
        SANDBOX_PORT: '0',
        SANDBOX_DATA_DIR: dataDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    try {
      const url = (await eventually(
        () => LISTENING.exec(output),
        (match) => match !== null,
        { what: 'the sandbox listening', timeoutMs: 60_000 },
      ))![1];
      expect((await fetch(`${url}/ledger`)).ok).toBe(true);
      npm.kill('SIGTERM');
      await eventually(
        () =>
          fetch(`${url}/ledger`).then(
            () => 'still serving',
            () => 'stopped',
          ),
        (state) => state === 'stopped',
        { what: 'the sandbox to stop', timeoutMs: 15_000 },
      );
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // Nothing left of it: as it should be.
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
