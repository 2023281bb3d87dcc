import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Tenant } from '../../db/entities/index.js';
import { recordAudit } from '../audit.js';
import { jsonContent, problemResponses } from '../openapi.js';
import { findPage } from '../pagination.js';
import { presentTenant } from '../presenters/security.js';
import { ApiError } from '../problem.js';
import type { RouteTable } from '../route-table.js';
import { IdempotencyHeaderSchema } from '../schemas/common.js';
import {
  CreateTenantSchema,
  PageQuerySchema,
  TenantIdParamsSchema,
  TenantListSchema,
  TenantSchema,
  UpdateTenantSchema,
} from '../schemas/security.js';
import { validate } from '../validate.js';

/** The account's tenant, or a 404 that says nothing of other accounts' tenants. */
export async function findAccountTenant(em: EntityManager, accountId: string, params: unknown): Promise<Tenant> {
  const { tenantId } = validate(TenantIdParamsSchema, params, 'params');
  const tenant = await em.findOne(Tenant, { id: tenantId, accountId });
  if (!tenant) throw new ApiError(404, 'tenant_not_found', 'no such tenant');
  return tenant;
}

export function addTenantRoutes(routes: RouteTable, { orm }: { orm: MikroORM }): void {
  routes.add({
    method: 'post',
    path: '/account/tenants',
    scope: 'account',
    roles: ['account-tenant-write'],
    docs: {
      summary: 'Create a tenant',
      tags: ['Account'],
      request: { headers: IdempotencyHeaderSchema, body: jsonContent(CreateTenantSchema) },
      responses: { 201: { description: 'The tenant', ...jsonContent(TenantSchema) }, ...problemResponses(400) },
    },
    handler: async (req, res, { principal, accountId }) => {
      const input = validate(CreateTenantSchema, req.body);
      const em = orm.em.fork();
      const now = new Date();
      const tenant = em.create(Tenant, {
        id: randomUUID(),
        accountId,
        name: input.name,
        timeZone: input.timeZone ?? null,
        dunningRetryDelaysDays: input.dunning?.retryDelaysDays ?? null,
        createdAt: now,
        updatedAt: now,
      });
      recordAudit(em, principal, { action: 'tenant.create', targetType: 'tenant', targetId: tenant.id, tenantId: tenant.id, details: input });
      await em.flush();
      res.status(201).json(presentTenant(tenant));
    },
  });

  routes.add({
    method: 'get',
    path: '/account/tenants',
    scope: 'account',
    roles: ['account-tenant-read'],
    docs: {
      summary: 'List the account’s tenants, newest first',
      tags: ['Account'],
      request: { query: PageQuerySchema },
      responses: { 200: { description: 'A page of tenants', ...jsonContent(TenantListSchema) }, ...problemResponses(400) },
    },
    handler: async (req, res, { accountId }) => {
      const query = validate(PageQuerySchema, req.query, 'query');
      const page = await findPage(orm.em.fork(), Tenant, { accountId }, query, 'id');
      res.json({ items: page.items.map(presentTenant), nextCursor: page.nextCursor });
    },
  });

  routes.add({
    method: 'get',
    path: '/account/tenants/:tenantId',
    scope: 'account',
    roles: ['account-tenant-read'],
    docs: {
      summary: 'Get a tenant',
      tags: ['Account'],
      request: { params: TenantIdParamsSchema },
      responses: { 200: { description: 'The tenant', ...jsonContent(TenantSchema) } },
    },
    handler: async (req, res, { accountId }) => {
      res.json(presentTenant(await findAccountTenant(orm.em.fork(), accountId, req.params)));
    },
  });

  routes.add({
    method: 'patch',
    path: '/account/tenants/:tenantId',
    scope: 'account',
    roles: ['account-tenant-write'],
    docs: {
      summary: 'Update a tenant’s name, time zone or dunning schedule',
      description: 'Orders already taken keep the dunning schedule and time zone they were taken with.',
      tags: ['Account'],
      request: { params: TenantIdParamsSchema, body: jsonContent(UpdateTenantSchema) },
      responses: { 200: { description: 'The tenant', ...jsonContent(TenantSchema) }, ...problemResponses(400) },
    },
    handler: async (req, res, { principal, accountId }) => {
      const em = orm.em.fork();
      const tenant = await findAccountTenant(em, accountId, req.params);
      const input = validate(UpdateTenantSchema, req.body);
      if (input.name !== undefined) tenant.name = input.name;
      if (input.timeZone !== undefined) tenant.timeZone = input.timeZone;
      if (input.dunning !== undefined) tenant.dunningRetryDelaysDays = input.dunning?.retryDelaysDays ?? null;
      recordAudit(em, principal, { action: 'tenant.update', targetType: 'tenant', targetId: tenant.id, tenantId: tenant.id, details: input });
      await em.flush();
      res.json(presentTenant(tenant));
    },
  });
}
