import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

/** Tables whose rows expire, each cleared of what has expired in bounded batches. */
const EXPIRING_TABLES = ['idempotency_record', 'used_nonce'] as const;
const BATCH = 1_000;

/**
 * Deletes expired idempotency records and HMAC nonces every minute, off the request path: a
 * sign-in or POST never pays for a table-wide delete. Expired rows left until then are harmless,
 * because their readers treat an expired row as absent.
 */
export class Housekeeping {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly orm: MikroORM,
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.runOnce()
        .catch((err) => this.logger.warn({ err }, 'housekeeping failed; will try again'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Rows deleted per table. */
  async runOnce(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    const connection = this.orm.em.getConnection();
    for (const table of EXPIRING_TABLES) {
      deleted[table] = 0;
      for (;;) {
        // ctid batches keep each delete short, so it never holds many locks or a long transaction.
        const rows = await connection.execute(
          `delete from ${table} where ctid in (select ctid from ${table} where expires_at < now() limit ${BATCH}) returning 1`,
        );
        deleted[table] += rows.length;
        if (rows.length < BATCH) break;
      }
    }
    return deleted;
  }
}
