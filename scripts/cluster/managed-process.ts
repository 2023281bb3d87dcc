import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface ProcessSpec {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output (stdout and stderr) is appended here, by the child itself. */
  logFile: string;
}

/**
 * One process of the topology, which can be stopped gently (SIGTERM, then SIGKILL), killed, or
 * started again: `npm run cluster` runs its processes with it, and the fault tests break them.
 */
export class ManagedProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  /** Exits nobody asked for: a crash shows here. */
  readonly unexpectedExits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly spec: ProcessSpec,
  ) {}

  start(): void {
    if (this.isRunning()) throw new Error(`${this.name} is already running`);
    const log = openSync(this.spec.logFile, 'a');
    try {
      this.stopping = false;
      const child = spawn(this.spec.command, this.spec.args, {
        cwd: this.spec.cwd,
        env: this.spec.env,
        stdio: ['ignore', log, log],
      });
      this.child = child;
      this.exited = new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          if (!this.stopping) this.unexpectedExits.push({ code, signal });
          resolve();
        }),
      );
    } finally {
      closeSync(log);
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, and SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.isRunning()) return;
    this.stopping = true;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL: what a crash or an OOM kill does. */
  async kill(): Promise<void> {
    if (!this.isRunning()) return;
    this.stopping = true;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** The end of its log, for error messages. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

/** Polls `probe` until it answers true, failing early if `process` exits and after `timeoutMs`. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  process?: ManagedProcess,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await probe().catch(() => false);
    // Checked after the probe too: an answer from something else while this process died is no answer.
    if (process && !process.isRunning())
      throw new Error(`${process.name} exited while waiting for ${what}:\n${process.tail()}`);
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${process ? `:\n${process.tail()}` : ''}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
