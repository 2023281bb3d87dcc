import type { EntityManager } from '@mikro-orm/postgresql';
import type { InstalledApp } from '../domain/installed-app.js';
import type { SecretTime } from '../domain/retired-secrets.js';
import { AppInstallation } from './entities/index.js';
import { sealedContext } from './sealed-columns.js';
import type { SecretBox } from './secret-box.js';

export function sealInstallationSecrets(
  box: SecretBox,
  installationId: string,
  secrets: Record<string, string>,
): string | null {
  return Object.keys(secrets).length > 0
    ? box.seal(JSON.stringify(secrets), sealedContext('app_installation', installationId))
    : null;
}

export function openInstallationSecrets(box: SecretBox, installation: AppInstallation): Record<string, string> {
  if (!installation.secretsCiphertext) return {};
  return JSON.parse(
    box.open(installation.secretsCiphertext, sealedContext('app_installation', installation.id)),
  ) as Record<string, string>;
}

export function sealSecretTimes(box: SecretBox, installationId: string, times: SecretTime[]): string | null {
  return times.length > 0 ? box.seal(JSON.stringify(times), sealedContext('app_installation', installationId)) : null;
}

export function openSecretTimes(box: SecretBox, installation: AppInstallation): SecretTime[] {
  if (!installation.retiredSecretsCiphertext) return [];
  const opened: unknown = JSON.parse(
    box.open(installation.retiredSecretsCiphertext, sealedContext('app_installation', installation.id)),
  );
  // Both columns are sealed to the row: one copied over the other opens, and must not pass for the other.
  if (!Array.isArray(opened)) return [];
  // Each with the start of its time: an entry of another shape verifies nothing.
  const isTime = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value));
  return (opened as Partial<SecretTime>[]).filter(
    (t): t is SecretTime =>
      typeof t.field === 'string' &&
      typeof t.value === 'string' &&
      isTime(t.from) &&
      (t.to === undefined || isTime(t.to)),
  );
}

/** A tenant's installation of an app, secrets opened, for its connector; undefined when not installed. */
export async function loadInstalledApp(
  em: EntityManager,
  box: SecretBox,
  tenantId: string,
  appId: string,
): Promise<InstalledApp | undefined> {
  const installation = await em.findOne(AppInstallation, { tenantId, appId });
  if (!installation) return undefined;
  return { configuration: installation.configuration, secrets: openInstallationSecrets(box, installation) };
}
