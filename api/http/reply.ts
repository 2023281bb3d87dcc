/** What a handler answers. The table sends it, after the request's transaction has committed. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
