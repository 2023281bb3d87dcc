import type { EntityManager } from '@mikro-orm/postgresql';
import { SecurityKey } from '../../db/entities/index.js';
import type { SecretBox } from '../../db/secret-box.js';
import { forgetting, type ForgetsRows } from '../../db/row-cache.js';
import { recordAudit } from '../audit/record-audit.js';
import { PageQuerySchema } from '../http/common-schemas.js';
import { findPage } from '../http/pagination.js';
import { ApiError } from '../http/problem.js';
import type { RouteTable } from '../http/route-table.js';
import { TenantIdParamsSchema } from '../tenants/schemas.js';
import { findAccountTenant } from '../tenants/routes.js';
import { createSecurityKey } from './key-pair.js';
import { presentKey } from './presenter.js';
import {
  CreateAccountKeySchema,
  CreatedSecurityKeySchema,
  CreateTenantKeySchema,
  PublicKeyParamsSchema,
  SecurityKeyListSchema,
  TenantKeyParamsSchema,
} from './schemas.js';

/** null: the account's own keys; a tenant id: that tenant's keys (checked to belong to the account). */
async function keyOwner(em: EntityManager, accountId: string, params: object | undefined): Promise<string | null> {
  return params && 'tenantId' in params && typeof params.tenantId === 'string'
    ? (await findAccountTenant(em, accountId, params.tenantId)).id
    : null;
}

/**
 * Refuses to delete an account-admin key that is the account's last: account keys are made only by an
 * account admin, so nothing could manage the account's tenants and keys after it. Counted with the
 * account's row locked, so two such deletes at once cannot both pass.
 */
async function refuseLastAdminKey(em: EntityManager, accountId: string): Promise<void> {
  const context: unknown = em.getTransactionContext();
  await em.getConnection().execute('select 1 from account where id = ? for update', [accountId], 'all', context);
  const [{ count }] = await em.getConnection().execute<{ count: number }[]>(
    `select count(*)::int as count from security_key
        where account_id = ? and tenant_id is null and roles @> '["account-admin"]'::jsonb`,
    [accountId],
    'all',
    context,
  );
  if (count <= 1)
    throw new ApiError(
      409,
      'last_admin_key',
      'this is the account’s last account-admin key: create another before deleting it, or nothing could manage the account',
    );
}

/**
 * Account keys (/account/keys) and tenant keys (/account/tenants/{tenantId}/keys), both managed by
 * account admins. A deleted key stops working at once, tokens already issued to it included.
 */
export function addSecurityKeyRoutes(
  routes: RouteTable,
  { secretBox, securityKeys }: { secretBox: SecretBox; securityKeys: ForgetsRows },
): void {
  const account = {
    base: '/account/keys',
    kind: 'account-key',
    createSchema: CreateAccountKeySchema,
    noun: 'an account key',
    owner: 'the account’s',
  };
  const tenant = {
    base: '/account/tenants/:tenantId/keys',
    kind: 'tenant-key',
    createSchema: CreateTenantKeySchema,
    noun: 'a tenant key',
    owner: 'a tenant’s',
  };

  for (const { base, kind, createSchema, noun, owner } of [account, tenant]) {
    const forTenant = kind === 'tenant-key';
    const ownerParams = forTenant ? TenantIdParamsSchema : undefined;

    routes.add({
      method: 'post',
      path: base,
      scope: 'account',
      roles: ['account-admin'],
      summary: `Create ${noun}`,
      description: 'The answer holds the private key. It is shown this once and cannot be read again.',
      tags: ['Security keys'],
      params: ownerParams,
      body: createSchema,
      responses: { 201: { description: 'The key, with its private key', schema: CreatedSecurityKeySchema } },
      handler: async ({ params, body, em, context: { principal, accountId } }) => {
        const tenantId = await keyOwner(em, accountId, params);
        const { entity, privateKey } = createSecurityKey(em, secretBox, {
          accountId,
          tenantId,
          name: body.name,
          roles: [...new Set<string>(body.roles)],
          createdBy: principal.publicKey,
        });
        recordAudit(em, principal, {
          action: `${kind}.create`,
          targetType: kind,
          targetId: entity.publicKey,
          tenantId,
          details: { name: entity.name, roles: entity.roles },
        });
        return { status: 201, body: { ...presentKey(entity), privateKey } };
      },
    });

    routes.add({
      method: 'get',
      path: base,
      scope: 'account',
      roles: ['account-admin'],
      summary: `List ${owner} keys, newest first`,
      description: 'Private keys are never listed.',
      tags: ['Security keys'],
      params: ownerParams,
      query: PageQuerySchema,
      responses: { 200: { description: 'A page of keys', schema: SecurityKeyListSchema } },
      handler: async ({ params, query, em, context: { accountId } }) => {
        const tenantId = await keyOwner(em, accountId, params);
        const page = await findPage(em, SecurityKey, { accountId, tenantId }, query, 'publicKey');
        return { status: 200, body: { items: page.items.map(presentKey), nextCursor: page.nextCursor } };
      },
    });

    routes.add({
      method: 'delete',
      path: `${base}/:publicKey`,
      scope: 'account',
      roles: ['account-admin'],
      summary: `Delete ${noun}`,
      description: forTenant
        ? 'Takes effect at once: access tokens already issued to the key stop working.'
        : 'Takes effect at once: access tokens already issued to the key stop working. The account’s last ' +
          'account-admin key is not deleted (409 last_admin_key): nothing could manage the account after it.',
      tags: ['Security keys'],
      params: forTenant ? TenantKeyParamsSchema : PublicKeyParamsSchema,
      responses: { 204: { description: 'Deleted' } },
      problems: forTenant ? [] : [409],
      handler: async ({ params, em, afterCommit, context: { principal, accountId } }) => {
        const tenantId = await keyOwner(em, accountId, params);
        const key = await em.findOne(SecurityKey, { publicKey: params.publicKey, accountId, tenantId });
        if (!key) throw new ApiError(404, 'key_not_found', 'no such key');
        if (tenantId === null && key.roles.includes('account-admin')) await refuseLastAdminKey(em, accountId);
        em.remove(key);
        // Other processes hear of it from PostgreSQL; this one must not answer before it forgets.
        afterCommit(forgetting(securityKeys, key.publicKey));
        recordAudit(em, principal, {
          action: `${kind}.delete`,
          targetType: kind,
          targetId: key.publicKey,
          tenantId,
          details: { name: key.name },
        });
        return { status: 204 };
      },
    });
  }
}
