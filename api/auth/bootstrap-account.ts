import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Account } from '../../db/entities/index.js';
import { SecretBox, type MasterKeys } from '../../db/secret-box.js';
import { createSecurityKey } from '../keys/key-pair.js';

export interface BootstrappedAccount {
  accountId: string;
  publicKey: string;
  privateKey: string;
}

/** Creates an account and its first account-admin key: the way in for a new installation. */
export async function bootstrapAccount(
  orm: MikroORM,
  masterKeys: MasterKeys,
  name = 'First account',
): Promise<BootstrappedAccount> {
  const em = orm.em.fork();
  const account = em.create(Account, { id: randomUUID(), name, createdAt: new Date() });
  const { entity, privateKey } = createSecurityKey(em, SecretBox.fromMasterKeys(masterKeys), {
    accountId: account.id,
    tenantId: null,
    name: 'bootstrap admin key',
    roles: ['account-admin'],
    createdBy: null,
  });
  await em.flush();
  return { accountId: account.id, publicKey: entity.publicKey, privateKey };
}
