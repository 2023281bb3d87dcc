import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Resolution } from '../../orders/scheme-resolution.js';
import { Account, AppInstallation, Tenant } from '../../db/entities/index.js';
import { sealInstallationSecrets } from '../../db/installed-apps.js';
import { SecretBox, type MasterKeys } from '../../db/secret-box.js';
import type { PaymentMethod } from '../../domain/scheme.js';
import { newSandboxApiKey } from '../../apps/sandbox/api-key.js';

/**
 * An account and tenant written straight to the database, with the sandbox apps installed: for
 * workflow tests, which store orders as the API would without going through it.
 */
export async function createTenantRows(
  orm: MikroORM,
  masterKeys: MasterKeys,
  apps = ['SANDBOX_CARD', 'SANDBOX_BANK', 'SANDBOX_VOUCHERS'],
  /** Also installs HTTP_CONNECTOR to this provider, answering within a second or given up. */
  ownProvider?: { url: string; secret: string },
) {
  const em = orm.em.fork();
  const box = SecretBox.fromMasterKeys(masterKeys);
  const account = em.create(Account, { id: randomUUID(), name: 'workflow tests', createdAt: new Date() });
  const tenant = em.create(Tenant, {
    id: randomUUID(),
    accountId: account.id,
    name: 'workflow tests',
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  const sandboxApiKey = newSandboxApiKey();
  for (const appId of apps) {
    const id = randomUUID();
    em.create(AppInstallation, {
      id,
      tenantId: tenant.id,
      appId,
      configuration: {},
      secretsCiphertext: sealInstallationSecrets(box, id, { apiKey: sandboxApiKey }),
      secretsSet: ['apiKey'],
      createdAt: new Date(),
      updatedAt: new Date(),
    });
  }
  if (ownProvider) {
    const id = randomUUID();
    em.create(AppInstallation, {
      id,
      tenantId: tenant.id,
      appId: 'HTTP_CONNECTOR',
      configuration: { url: ownProvider.url, timeoutMs: 1000 },
      secretsCiphertext: sealInstallationSecrets(box, id, { signingSecret: ownProvider.secret }),
      secretsSet: ['signingSecret'],
      createdAt: new Date(),
      updatedAt: new Date(),
    });
  }
  await em.flush();
  return { tenantId: tenant.id, sandboxApiKey };
}

/** What resolving an instruction against a one-app scheme gives: for orders stored without the API. */
export function resolvedTo(appId: string, paymentMethod: PaymentMethod): Resolution {
  const option = { appId, paymentMethod, priority: 1, voucherGroupIds: [] };
  return { schemeId: randomUUID(), schemeVersion: 1, options: [option], chosen: option };
}
