import type { Readable } from 'node:stream';
import type { Client } from 'pg';
import QueryStream from 'pg-query-stream';

/**
 * A query's rows read through a cursor, as a stream that fails the moment its connection is lost.
 * pg-query-stream's own destroy closes the cursor and waits for a ReadyForQuery that a lost
 * connection never sends (node-postgres#2642, #2870): the stream never ends nor fails, and whatever
 * reads it waits for ever. Told its connection ended, this one fails at once, or ends the destroy
 * already waiting.
 */
class RowStream extends QueryStream {
  private lost?: Error;
  private endDestroy?: () => void;

  /** Its connection ended: fails now, or ends the destroy that waits on it. */
  lose(err: Error): void {
    this.lost ??= err;
    if (this.endDestroy) this.endDestroy();
    // Every row already read: nothing was lost, and an error after the end would reach no one.
    else this.destroy(this.readableEnded ? undefined : err);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.lost) return cb(err ?? this.lost);
    let ended = false;
    const end = (closeErr?: Error | null) => {
      if (ended) return;
      ended = true;
      cb(closeErr ?? err ?? (this.readableEnded ? null : this.lost));
    };
    this.endDestroy = () => end();
    super._destroy(err as Error, end);
  }
}

/** Reads `sql`'s rows on `connection`; `detach` once the stream is done with, before the connection is reused. */
export function streamRows(
  connection: Client,
  sql: string,
  values: unknown[],
  highWaterMark: number,
): { rows: Readable; detach: () => void } {
  const rows = new RowStream(sql, values, { highWaterMark });
  // A connection failure (SQLSTATE class 08), as the API tells a database outage: a warning, not a 500's stack.
  const lose = () =>
    rows.lose(Object.assign(new Error('Connection terminated while the rows were read'), { code: '08006' }));
  connection.once('end', lose);
  connection.query(rows);
  return { rows, detach: () => connection.off('end', lose) };
}
