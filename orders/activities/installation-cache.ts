import type { MikroORM } from '@mikro-orm/postgresql';
import { loadInstalledApp } from '../../db/installed-apps.js';
import type { SecretBox } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { withinTime } from '../../domain/time-limit.js';

const FRESH_MS = 60_000;

/**
 * Installations (credentials) as payment activities need them, read from the database and kept
 * for a minute. The database is not on the money path: an installation read before is used while it
 * is read again, and however old it is while it cannot be, so collections go on through a database
 * outage. A configuration change reaches payments within a minute (and the read that finds it).
 */
export class InstallationCache {
  private readonly entries = new Map<string, { at: number; installation: InstalledApp | undefined }>();
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
    if (cached && Date.now() - cached.at < FRESH_MS) return cached.installation;
    const reading = this.reading.get(key) ?? this.readAgain(key, tenantId, appId);
    // One read before is used while it is read again: a read that hangs (a lock, a dead connection)
    // or fails holds up no payment of the installation.
    return cached?.installation ?? reading;
  }

  /** A read that takes longer than this is given up (another is tried by the next call). */
  protected readonly readLimitMs: number = 10_000;

  private readAgain(key: string, tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    const reading = withinTime(
      this.read(tenantId, appId),
      this.readLimitMs,
      () => new Error(`the installation was not read within ${this.readLimitMs} ms`),
    )
      .then((installation) => {
        this.entries.set(key, { at: Date.now(), installation });
        return installation;
      })
      .finally(() => this.reading.delete(key));
    // Calls answered from the entry do not wait for it: its failure is theirs to ignore.
    reading.catch(() => undefined);
    this.reading.set(key, reading);
    return reading;
  }

  /** One installation as the database holds it now. */
  protected read(tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    return loadInstalledApp(this.orm.em.fork(), this.box, tenantId, appId);
  }
}
