import pg from 'pg';

/** The channel the `notify_row_change` trigger speaks on (migration Migration20261201060000). */
export const ROW_CHANGES_CHANNEL = 'row_changes';
/** Between attempts to listen again: doubling from the first to the last. */
const RECONNECT_MS = { first: 500, last: 30_000 };

/**
 * Rows changed by any process, as PostgreSQL tells its listeners: a trigger sends
 * `{table}:{key}` on `row_changes` when the changing transaction commits. What lets a process
 * cache a row and drop it when it changes anywhere (RowCache).
 *
 * While its connection is down, notifications are lost: `live` is false, every reader is told to
 * forget what it holds (`onReset`), and again once it listens anew, since rows may have changed in
 * between.
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
    private readonly warn: (message: string) => void,
    private readonly firstRetryMs: number,
  ) {
    this.retryMs = firstRetryMs;
  }

  /** Starts listening (in the background: until it does, `live` is false). */
  static listen(
    databaseUrl: string,
    warn: (message: string) => void,
    { firstRetryMs = RECONNECT_MS.first } = {},
  ): RowChanges {
    const changes = new RowChanges(databaseUrl, warn, firstRetryMs);
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
    const client = new pg.Client({ connectionString: this.databaseUrl });
    this.client = client;
    let lost = false;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      this.down();
      void client.end().catch(() => undefined);
      if (this.closed) return;
      if (!this.reported) this.warn(`not hearing row changes (${why}); caches are off until listening again`);
      this.reported = true;
      this.retry = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MS.last);
    };
    client.on('error', (err) => lose(err.message));
    client.on('end', () => lose('connection ended'));
    client.on('notification', ({ channel, payload }) => {
      if (channel !== ROW_CHANGES_CHANNEL || !payload) return;
      const colon = payload.indexOf(':');
      const key = payload.slice(colon + 1);
      for (const forget of this.onChanges.get(payload.slice(0, colon)) ?? []) forget(key);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${ROW_CHANGES_CHANNEL}`))
      .then(() => {
        if (lost || this.closed) return;
        // Rows may have changed while nobody listened.
        for (const forgetAll of this.onResets) forgetAll();
        this.live = true;
        this.reported = false;
        this.retryMs = this.firstRetryMs;
      })
      .catch((err: Error) => lose(err.message));
  }

  private down(): void {
    this.live = false;
    for (const forgetAll of this.onResets) forgetAll();
  }
}

/** What a route that changes rows of a cached table needs: to drop them here before it answers. */
export interface ForgetsRows {
  forget(key: string): void;
}

/**
 * Rows of one table read often and changed rarely, kept by key while `changes` is live and dropped
 * when the row changes in any process (or at once in this one, with `forget`). A read that began
 * before any change was heard is not kept: it may hold the row as it was.
 */
export class RowCache<V> implements ForgetsRows {
  private readonly rows = new Map<string, V>();
  /** Counts what was forgotten: a read keeps its row only if nothing was since it began. */
  private generation = 0;

  constructor(
    private readonly changes: RowChanges | undefined,
    table: string,
    private readonly maxRows = 10_000,
  ) {
    changes?.onChange(table, (key) => this.forget(key));
    changes?.onReset(() => this.forgetAll());
  }

  async read(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (!this.changes?.live) return load();
    const cached = this.rows.get(key);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const row = await load();
    if (row !== undefined && this.changes.live && generation === this.generation) {
      // The oldest kept goes first: a bound, not a recency order.
      if (this.rows.size >= this.maxRows) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(key, row);
    }
    return row;
  }

  forget(key: string): void {
    this.generation++;
    this.rows.delete(key);
  }

  private forgetAll(): void {
    this.generation++;
    this.rows.clear();
  }
}
