import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Tenant } from '../../db/entities/index.js';
import { recordAudit } from '../audit/record-audit.js';
import { PageQuerySchema } from '../http/common-schemas.js';
import { findPage } from '../http/pagination.js';
import { ApiError } from '../http/problem.js';
import type { RouteTable } from '../http/route-table.js';
import { presentTenant } from './presenter.js';
import { forgetting, type ForgetsRows } from '../../db/row-cache.js';
import {
  CreateTenantSchema,
  TenantIdParamsSchema,
  TenantListSchema,
  TenantSchema,
  UpdateTenantSchema,
} from './schemas.js';

/** The account's tenant, or a 404 that says nothing of other accounts' tenants. */
export async function findAccountTenant(em: EntityManager, accountId: string, tenantId: string): Promise<Tenant> {
  const tenant = await em.findOne(Tenant, { id: tenantId, accountId });
  if (!tenant) throw new ApiError(404, 'tenant_not_found', 'no such tenant');
  return tenant;
}

/** `tenants`: the API's cache of tenants' settings, keyed by tenant id. */
export function addTenantRoutes(routes: RouteTable, { tenants }: { tenants: ForgetsRows }): void {
  routes.add({
    method: 'post',
    path: '/account/tenants',
    scope: 'account',
    roles: ['account-tenant-write'],
    summary: 'Create a tenant',
    tags: ['Account'],
    body: CreateTenantSchema,
    responses: { 201: { description: 'The tenant', schema: TenantSchema } },
    handler: ({ body, em, context: { principal, accountId } }) => {
      const now = new Date();
      const tenant = em.create(Tenant, {
        id: randomUUID(),
        accountId,
        name: body.name,
        timeZone: body.timeZone ?? null,
        dunningRetryDelaysDays: body.dunning?.retryDelaysDays ?? null,
        returnsPolicy: body.returnsPolicy ?? null,
        arrearsExpiryDays: body.arrearsExpiryDays ?? null,
        businessDayRule: body.businessDayRule ?? null,
        createdAt: now,
        updatedAt: now,
      });
      recordAudit(em, principal, {
        action: 'tenant.create',
        targetType: 'tenant',
        targetId: tenant.id,
        tenantId: tenant.id,
        details: body,
      });
      return { status: 201, body: presentTenant(tenant) };
    },
  });

  routes.add({
    method: 'get',
    path: '/account/tenants',
    scope: 'account',
    roles: ['account-tenant-read'],
    summary: 'List the account’s tenants, newest first',
    tags: ['Account'],
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of tenants', schema: TenantListSchema } },
    handler: async ({ query, em, context: { accountId } }) => {
      const page = await findPage(em, Tenant, { accountId }, query, 'id');
      return { status: 200, body: { items: page.items.map(presentTenant), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/account/tenants/:tenantId',
    scope: 'account',
    roles: ['account-tenant-read'],
    summary: 'Get a tenant',
    tags: ['Account'],
    params: TenantIdParamsSchema,
    responses: { 200: { description: 'The tenant', schema: TenantSchema } },
    handler: async ({ params, em, context: { accountId } }) => ({
      status: 200,
      body: presentTenant(await findAccountTenant(em, accountId, params.tenantId)),
    }),
  });

  routes.add({
    method: 'patch',
    path: '/account/tenants/:tenantId',
    scope: 'account',
    roles: ['account-tenant-write'],
    summary: 'Update a tenant’s name, time zone or dunning schedule',
    description: 'Orders already taken keep the dunning schedule and time zone they were taken with.',
    tags: ['Account'],
    params: TenantIdParamsSchema,
    body: UpdateTenantSchema,
    responses: { 200: { description: 'The tenant', schema: TenantSchema } },
    handler: async ({ params, body, em, afterCommit, context: { principal, accountId } }) => {
      const tenant = await findAccountTenant(em, accountId, params.tenantId);
      // Other API processes hear of it from PostgreSQL; an order taken here next must see it.
      afterCommit(forgetting(tenants, tenant.id));
      if (body.name !== undefined) tenant.name = body.name;
      if (body.timeZone !== undefined) tenant.timeZone = body.timeZone;
      if (body.dunning !== undefined) tenant.dunningRetryDelaysDays = body.dunning?.retryDelaysDays ?? null;
      if (body.returnsPolicy !== undefined) tenant.returnsPolicy = body.returnsPolicy;
      if (body.arrearsExpiryDays !== undefined) tenant.arrearsExpiryDays = body.arrearsExpiryDays;
      if (body.businessDayRule !== undefined) tenant.businessDayRule = body.businessDayRule;
      recordAudit(em, principal, {
        action: 'tenant.update',
        targetType: 'tenant',
        targetId: tenant.id,
        tenantId: tenant.id,
        details: body,
      });
      await em.flush();
      return { status: 200, body: presentTenant(tenant) };
    },
  });
}
