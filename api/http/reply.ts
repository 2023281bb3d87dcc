import type { Response } from 'express';

/** What a handler answers. The table sends it, after the request's transaction has committed. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A body too large to hold (an export): written to the response as it is read. Only GET routes stream. */
  stream?: (res: Response) => Promise<void>;
}
