import type { MikroORM } from '@mikro-orm/postgresql';
import { loadInstalledApp } from '../../db/installed-apps.js';
import { SecretOpenError, type SecretBox } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { withinTime } from '../../domain/time-limit.js';

const FRESH_MS = 60_000;

/**
 * Installations (credentials) as payment activities need them, read from the database and kept
 * for a minute. Past its minute a copy is read again before it is used: a configuration change (a
 * provider moved, which the API allows only while no payment through the app is due within 10
 * minutes) reaches every payment within a minute. The database is kept off the money path in an
 * outage only: once a read of the installation has failed (or hung), the copy before is used,
 * however old, without waiting until a minute has passed since the last read that failed. Secrets
 * that cannot be opened are no outage, and are told.
 */
export class InstallationCache {
  private readonly entries = new Map<
    string,
    { at: number; installation: InstalledApp | undefined; failedAt?: number }
  >();
  /**
   * Reads under way, shared by every call asking meanwhile: when an entry expires, an account's calls
   * under way (up to twenty on a worker) would otherwise each read it, and each take a connection.
   */
  private readonly reading = new Map<string, Promise<InstalledApp | undefined>>();

  constructor(
    private readonly orm: MikroORM,
    private readonly box: SecretBox,
  ) {}

  async get(tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    const key = `${tenantId}/${appId}`;
    const cached = this.entries.get(key);
    const now = Date.now();
    if (cached && now - cached.at < FRESH_MS) return cached.installation;
    const reading = this.reading.get(key) ?? this.readAgain(key, tenantId, appId);
    if (!cached) return reading;
    // The database in trouble (the last read of it failed within the minute): the copy before, at once.
    if (cached.failedAt !== undefined && now - cached.failedAt < FRESH_MS) return cached.installation;
    // A read that hangs (a lock, a dead connection) or fails holds up a payment only until it is given up.
    return reading.catch((err: unknown) => {
      if (unreadable(err)) throw err;
      return cached.installation;
    });
  }

  /**
   * Whether the installation was read from the database within the minute (not a copy kept through
   * an outage): what it says of where the app sends its keys is as the API last let it be.
   */
  readLately(tenantId: string, appId: string): boolean {
    const cached = this.entries.get(`${tenantId}/${appId}`);
    return cached !== undefined && Date.now() - cached.at < FRESH_MS;
  }

  /** A read that takes longer than this is given up (another is tried by the next call). */
  protected readonly readLimitMs: number = 10_000;

  private readAgain(key: string, tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    const reading = withinTime(
      this.read(tenantId, appId),
      this.readLimitMs,
      () => new Error(`the installation was not read within ${this.readLimitMs} ms`),
    )
      .then(
        (installation) => {
          this.entries.set(key, { at: Date.now(), installation });
          return installation;
        },
        (err: unknown) => {
          const entry = this.entries.get(key);
          if (entry && !unreadable(err)) entry.failedAt = Date.now();
          throw err;
        },
      )
      .finally(() => this.reading.delete(key));
    // Calls answered from the entry in an outage do not wait for it: its failure is theirs to ignore.
    reading.catch(() => undefined);
    this.reading.set(key, reading);
    return reading;
  }

  /** One installation as the database holds it now. */
  protected read(tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    return loadInstalledApp(this.orm.em.fork(), this.box, tenantId, appId);
  }
}

/**
 * The installation was read, and its secrets cannot be opened here (a master key not yet rolled out
 * to this worker): no outage, so the copy before (perhaps another provider's credentials, since
 * every change seals them again) is not used in its place.
 */
function unreadable(err: unknown): boolean {
  return err instanceof SecretOpenError;
}
