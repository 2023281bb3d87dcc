import type { Logger } from 'pino';

/**
 * Runs `job` now and then every `intervalMs` after each run ends (never two at once), until
 * stopped; a failed run is logged and the next one comes as usual. A long job is told to stop
 * by its signal, so that a shutdown does not wait for all of it.
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly stopping = new AbortController();

  constructor(
    private readonly name: string,
    private readonly job: (signal: AbortSignal) => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.job(this.stopping.signal)
        .catch((err) => this.logger.warn({ err }, `${this.name} failed; will try again`))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.running;
  }
}
