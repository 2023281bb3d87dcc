import type { MikroORM } from '@mikro-orm/postgresql';
import type { Request, Response } from 'express';
import { SecurityKey } from '../../db/entities/index.js';
import { createSecurityKey } from '../auth/key-pair.js';
import type { SecretBox } from '../auth/secret-box.js';
import { recordAudit } from '../audit.js';
import { jsonContent, problemResponses } from '../openapi.js';
import { findPage } from '../pagination.js';
import { presentKey } from '../presenters/security.js';
import { ApiError } from '../problem.js';
import type { AccountContext, RouteTable } from '../route-table.js';
import { IdempotencyHeaderSchema } from '../schemas/common.js';
import {
  CreateAccountKeySchema,
  CreatedSecurityKeySchema,
  CreateTenantKeySchema,
  PageQuerySchema,
  PublicKeyParamsSchema,
  SecurityKeyListSchema,
  TenantIdParamsSchema,
  TenantKeyParamsSchema,
} from '../schemas/security.js';
import { validate } from '../validate.js';
import { findAccountTenant } from './tenants.js';

export interface SecurityKeyRouteDeps {
  orm: MikroORM;
  secretBox: SecretBox;
}

/**
 * Account keys (/account/keys) and tenant keys (/account/tenants/{tenantId}/keys), both managed by
 * account admins. A deleted key stops working at once, tokens already issued to it included.
 */
export function addSecurityKeyRoutes(routes: RouteTable, { orm, secretBox }: SecurityKeyRouteDeps): void {
  /** null: the account's own keys; a tenant id: that tenant's keys (checked to belong to the account). */
  async function keyOwner(req: Request, { accountId }: AccountContext, forTenant: boolean): Promise<string | null> {
    return forTenant ? (await findAccountTenant(orm.em.fork(), accountId, req.params)).id : null;
  }

  for (const forTenant of [false, true]) {
    const base = forTenant ? '/account/tenants/:tenantId/keys' : '/account/keys';
    const kind = forTenant ? 'tenant-key' : 'account-key';
    const createSchema = forTenant ? CreateTenantKeySchema : CreateAccountKeySchema;
    const params = forTenant ? TenantIdParamsSchema : undefined;

    routes.add({
      method: 'post',
      path: base,
      scope: 'account',
      roles: ['account-admin'],
      docs: {
        summary: forTenant ? 'Create a tenant key' : 'Create an account key',
        description: 'The answer holds the private key. It is shown this once and cannot be read again.',
        tags: ['Security keys'],
        request: { headers: IdempotencyHeaderSchema, ...(params ? { params } : {}), body: jsonContent(createSchema) },
        responses: { 201: { description: 'The key, with its private key', ...jsonContent(CreatedSecurityKeySchema) }, ...problemResponses(400) },
      },
      handler: async (req: Request, res: Response, context: AccountContext) => {
        const tenantId = await keyOwner(req, context, forTenant);
        const input = validate(createSchema, req.body);
        const em = orm.em.fork();
        const { entity, privateKey } = createSecurityKey(em, secretBox, {
          accountId: context.accountId,
          tenantId,
          name: input.name,
          roles: [...new Set(input.roles)],
          createdBy: context.principal.publicKey,
        });
        recordAudit(em, context.principal, {
          action: `${kind}.create`,
          targetType: kind,
          targetId: entity.publicKey,
          tenantId,
          details: { name: entity.name, roles: entity.roles },
        });
        await em.flush();
        res.status(201).json({ ...presentKey(entity), privateKey });
      },
    });

    routes.add({
      method: 'get',
      path: base,
      scope: 'account',
      roles: ['account-admin'],
      docs: {
        summary: forTenant ? 'List a tenant’s keys' : 'List the account’s keys',
        description: 'Private keys are never listed.',
        tags: ['Security keys'],
        request: { ...(params ? { params } : {}), query: PageQuerySchema },
        responses: { 200: { description: 'A page of keys', ...jsonContent(SecurityKeyListSchema) }, ...problemResponses(400) },
      },
      handler: async (req: Request, res: Response, context: AccountContext) => {
        const tenantId = await keyOwner(req, context, forTenant);
        const query = validate(PageQuerySchema, req.query, 'query');
        const page = await findPage(orm.em.fork(), SecurityKey, { accountId: context.accountId, tenantId }, query, 'publicKey');
        res.json({ items: page.items.map(presentKey), nextCursor: page.nextCursor });
      },
    });

    routes.add({
      method: 'delete',
      path: `${base}/:publicKey`,
      scope: 'account',
      roles: ['account-admin'],
      docs: {
        summary: forTenant ? 'Delete a tenant key' : 'Delete an account key',
        description: 'Takes effect at once: access tokens already issued to the key stop working.',
        tags: ['Security keys'],
        request: { params: forTenant ? TenantKeyParamsSchema : PublicKeyParamsSchema },
        responses: { 204: { description: 'Deleted' } },
      },
      handler: async (req: Request, res: Response, context: AccountContext) => {
        const tenantId = await keyOwner(req, context, forTenant);
        const { publicKey } = validate(PublicKeyParamsSchema, { publicKey: req.params.publicKey }, 'params');
        const em = orm.em.fork();
        const key = await em.findOne(SecurityKey, { publicKey, accountId: context.accountId, tenantId });
        if (!key) throw new ApiError(404, 'key_not_found', 'no such key');
        em.remove(key);
        recordAudit(em, context.principal, { action: `${kind}.delete`, targetType: kind, targetId: publicKey, tenantId, details: { name: key.name } });
        await em.flush();
        res.status(204).end();
      },
    });
  }
}
