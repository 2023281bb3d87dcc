import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SecurityKey } from '../../db/entities/index.js';
import { sealedContext } from '../../db/sealed-columns.js';
import type { SecretBox } from '../../db/secret-box.js';

export interface NewKey {
  accountId: string;
  tenantId: string | null;
  name: string;
  roles: string[];
  createdBy: string | null;
}

/** The sealed private key is bound to its row: copied onto another key, it does not open. */
export function securityKeyContext(publicKey: string): string {
  return sealedContext('security_key', publicKey);
}

/**
 * Creates a key on `em` (not yet flushed) and returns it with its private key in clear: the only
 * moment it exists outside the cipher. The private key is 32 random bytes, base64, as the HMAC
 * scheme expects (it base64-decodes the private key to get the HMAC key).
 */
export function createSecurityKey(
  em: EntityManager,
  box: SecretBox,
  key: NewKey,
): { entity: SecurityKey; privateKey: string } {
  const privateKey = randomBytes(32).toString('base64');
  const publicKey = randomUUID();
  const entity = em.create(SecurityKey, {
    publicKey,
    accountId: key.accountId,
    tenantId: key.tenantId,
    name: key.name,
    roles: key.roles,
    privateKeyCiphertext: box.seal(privateKey, securityKeyContext(publicKey)),
    createdBy: key.createdBy,
    createdAt: new Date(),
  });
  return { entity, privateKey };
}
