import type { MikroORM } from '@mikro-orm/postgresql';
import { loadInstalledApp } from '../../db/installed-apps.js';
import type { SecretBox } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';

const FRESH_MS = 60_000;

/**
 * Installations (credentials) as payment activities need them, read from the database and kept
 * for a minute. The database is not on the money path: when it cannot be read, an installation
 * read before is used however old it is, so collections go on through a database outage.
 * A configuration change reaches payments within a minute.
 */
export class InstallationCache {
  private readonly entries = new Map<string, { at: number; installation: InstalledApp | undefined }>();

  constructor(
    private readonly orm: MikroORM,
    private readonly box: SecretBox,
  ) {}

  async get(tenantId: string, appId: string): Promise<InstalledApp | undefined> {
    const key = `${tenantId}/${appId}`;
    const cached = this.entries.get(key);
    if (cached && Date.now() - cached.at < FRESH_MS) return cached.installation;
    try {
      const installation = await loadInstalledApp(this.orm.em.fork(), this.box, tenantId, appId);
      this.entries.set(key, { at: Date.now(), installation });
      return installation;
    } catch (err) {
      if (cached?.installation) return cached.installation;
      throw err;
    }
  }
}
