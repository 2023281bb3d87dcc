import type { RowChanges } from './row-changes.js';

/** What a route that changes rows of a cached table needs: to drop them here before it answers. */
export interface ForgetsRows {
  forget(key: string): void;
}

/** An `afterCommit` step of a route that changed the row: this process drops it before answering. */
export const forgetting = (rows: ForgetsRows, key: string) => (): Promise<void> => Promise.resolve(rows.forget(key));

/** The longest a row is kept even when no change is heard: a bound on staleness should a notice ever be lost unnoticed. */
const MAX_AGE_MS = 60_000;

/**
 * Rows of one table read often and changed rarely, kept by key while `changes` is live and dropped
 * when the row changes in any process (or at once in this one, with `forget`). A read that began
 * before any change was heard is not kept: it may hold the row as it was.
 */
export class RowCache<V> implements ForgetsRows {
  private readonly rows = new Map<string, { row: V; keptAt: number }>();
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
    const kept = this.rows.get(key);
    if (kept && Date.now() - kept.keptAt < MAX_AGE_MS) return kept.row;
    const generation = this.generation;
    // Frozen, kept or not: the row is shared by every request that reads it while it is kept, and a
    // change made to it in one would otherwise reach the others (and only on a cache hit).
    const row = deepFreeze(await load());
    if (row !== undefined && this.changes.live && generation === this.generation) {
      // The oldest kept goes first: a bound, not a recency order.
      this.rows.delete(key);
      if (this.rows.size >= this.maxRows) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(key, { row, keptAt: Date.now() });
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

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
