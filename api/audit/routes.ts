import type { FilterQuery } from '@mikro-orm/postgresql';
import { AuditEntry } from '../../db/entities/index.js';
import { findPage } from '../http/pagination.js';
import type { RouteTable } from '../http/route-table.js';
import { presentAuditEntry } from './presenter.js';
import { AuditListSchema, AuditQuerySchema } from './schemas.js';

export function addAuditRoutes(routes: RouteTable): void {
  routes.add({
    method: 'get',
    path: '/account/audit',
    scope: 'account',
    roles: ['account-admin'],
    summary: 'Configuration changes in the account and its tenants, newest first',
    tags: ['Account'],
    query: AuditQuerySchema,
    responses: { 200: { description: 'A page of audit entries', schema: AuditListSchema } },
    handler: async ({ query, em, context: { accountId } }) => {
      const where: FilterQuery<AuditEntry> = { accountId };
      if (query.since) where.createdAt = { $gte: new Date(query.since) };
      const page = await findPage(em, AuditEntry, where, query, 'id');
      return { status: 200, body: { items: page.items.map(presentAuditEntry), nextCursor: page.nextCursor } };
    },
  });
}
