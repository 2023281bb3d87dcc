import { createHash } from 'node:crypto';
import type { InstalledApp } from './installed-app.js';

/**
 * A key-scope field's value as it says where keys are known: a URL's trailing slashes are not part
 * of it (the connector adds its paths without them).
 */
function comparable(field: string, value: unknown): unknown {
  return field === 'url' && typeof value === 'string' ? value.replace(/\/+$/, '') : value;
}

/**
 * The fields of `keyScope` (AppDefinition: where the app's payments' idempotency keys are known)
 * whose values differ between two configurations, plain settings and secrets together.
 */
export function keyScopeMoved(
  keyScope: readonly string[],
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): string[] {
  return keyScope.filter((field) => comparable(field, before[field]) !== comparable(field, after[field]));
}

/**
 * Where the installation sends `idempotencyKey`, as a digest: the app and its key-scope fields. A
 * payment's later calls under the key compare it with the one kept at its first send (ARCHITECTURE.md,
 * "Instruction lifecycle"). Salted with the key, since a sandbox merchant's scope is its secret key: the
 * digest is kept beside the key, and one of a short secret would otherwise be looked up in a table.
 */
export function keyScopeDigest(
  appId: string,
  keyScope: readonly string[],
  installation: InstalledApp,
  idempotencyKey: string,
): string {
  const settings: Record<string, unknown> = { ...installation.configuration, ...installation.secrets };
  const scope = keyScope.map((field) => [field, comparable(field, settings[field]) ?? null]);
  return createHash('sha256')
    .update(JSON.stringify([idempotencyKey, appId, scope]))
    .digest('hex');
}
