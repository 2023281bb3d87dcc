import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** The channel the `notify_row_change` trigger speaks on (migration Migration20261201060000). */
export const ROW_CHANGES_CHANNEL = 'row_changes';
/** Between attempts to listen again: doubling from the first to the last. */
const RECONNECT_MS = { first: 500, last: 30_000 };
/**
 * How often the listener sends itself a notice on the channel: one not heard back by the next is a
 * connection that no longer delivers (half-open, or a pooler that drops LISTEN), taken as lost.
 */
const HEARTBEAT_MS = 5_000;
const HEARTBEAT_TABLE = 'heartbeat';

export interface RowChangesLog {
  warn(message: string): void;
  info(message: string): void;
}

/**
 * Rows changed by any process, as PostgreSQL tells its listeners: a trigger sends
 * `{table}:{key}` on `row_changes` when the changing transaction commits. What lets a process
 * cache a row and drop it when it changes anywhere (RowCache). Needs a session of its own on the
 * server (not a pooler in transaction mode, where LISTEN hears nothing: the heartbeat tells).
 *
 * While its connection is down, notifications are lost: `live` is false and every reader is told to
 * forget what it holds (`onReset`); once it listens anew, readers are told again, so that a read
 * begun before then is not kept.
 */
export class RowChanges {
  /** True while every change is sure to be heard: a cache may keep what it reads only then. */
  live = false;
  private client?: pg.Client;
  private readonly onChanges = new Map<string, Set<(key: string) => void>>();
  private readonly onResets = new Set<() => void>();
  private closed = false;
  private retry?: NodeJS.Timeout;
  private retryMs: number;
  /** An outage is reported once, not at every attempt to end it. */
  private reported = false;

  private constructor(
    private readonly databaseUrl: string,
    private readonly log: RowChangesLog,
    private readonly firstRetryMs: number,
    private readonly heartbeatMs: number,
  ) {
    this.retryMs = firstRetryMs;
  }

  /** Starts listening (in the background: until it does, `live` is false). */
  static listen(
    databaseUrl: string,
    log: RowChangesLog,
    { firstRetryMs = RECONNECT_MS.first, heartbeatMs = HEARTBEAT_MS } = {},
  ): RowChanges {
    const changes = new RowChanges(databaseUrl, log, firstRetryMs, heartbeatMs);
    changes.connect();
    return changes;
  }

  onChange(table: string, forget: (key: string) => void): void {
    let forTable = this.onChanges.get(table);
    if (!forTable) this.onChanges.set(table, (forTable = new Set()));
    forTable.add(forget);
  }

  onReset(forgetAll: () => void): void {
    this.onResets.add(forgetAll);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.down();
    await this.client?.end().catch(() => undefined);
  }

  private connect(): void {
    const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true });
    this.client = client;
    let lost = false;
    let heartbeat: NodeJS.Timeout | undefined;
    /** The heartbeat sent and not yet heard back. */
    let unheard: string | undefined;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      clearInterval(heartbeat);
      this.down();
      void client.end().catch(() => undefined);
      if (this.closed) return;
      if (!this.reported) this.log.warn(`not hearing row changes (${why}); caches are off until listening again`);
      this.reported = true;
      this.retry = setTimeout(() => this.connect(), this.retryMs).unref();
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MS.last);
    };
    client.on('error', (err) => lose(err.message));
    client.on('end', () => lose('connection ended'));
    client.on('notification', ({ channel, payload }) => {
      if (channel !== ROW_CHANGES_CHANNEL || !payload) return;
      const colon = payload.indexOf(':');
      const table = payload.slice(0, colon);
      const key = payload.slice(colon + 1);
      if (table === HEARTBEAT_TABLE) {
        if (key === unheard) unheard = undefined;
        return;
      }
      for (const forget of this.onChanges.get(table) ?? []) forget(key);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${ROW_CHANGES_CHANNEL}`))
      .then(() => {
        if (lost || this.closed) return;
        // A read begun while nobody listened may hold a row changed meanwhile: readers start afresh.
        for (const forgetAll of this.onResets) forgetAll();
        this.live = true;
        if (this.reported) this.log.info('hearing row changes again; caches are on');
        this.reported = false;
        this.retryMs = this.firstRetryMs;
        heartbeat = setInterval(() => {
          if (unheard) return lose(`a heartbeat was not heard back within ${this.heartbeatMs} ms`);
          unheard = randomUUID();
          client
            .query('SELECT pg_notify($1, $2)', [ROW_CHANGES_CHANNEL, `${HEARTBEAT_TABLE}:${unheard}`])
            .catch((err: Error) => lose(err.message));
        }, this.heartbeatMs).unref();
      })
      .catch((err: Error) => lose(err.message));
  }

  private down(): void {
    this.live = false;
    for (const forgetAll of this.onResets) forgetAll();
  }
}
