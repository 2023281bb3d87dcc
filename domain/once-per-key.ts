/**
 * Whether something is to be said of a key now (a log line of a put-off, say): at most once per
 * `everyMs` each. Keeps the last time of at most `remembered` keys; past it, it starts again.
 */
export class OncePerKey {
  private readonly lastSaid = new Map<string, number>();

  constructor(
    private readonly everyMs: number,
    private readonly remembered = 10_000,
  ) {}

  due(key: string, now = Date.now()): boolean {
    if (now - (this.lastSaid.get(key) ?? Number.NEGATIVE_INFINITY) <= this.everyMs) return false;
    if (this.lastSaid.size >= this.remembered) this.lastSaid.clear();
    this.lastSaid.set(key, now);
    return true;
  }
}
