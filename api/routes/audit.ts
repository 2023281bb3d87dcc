import type { FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import { AuditEntry } from '../../db/entities/index.js';
import { jsonContent, problemResponses } from '../openapi.js';
import { findPage } from '../pagination.js';
import { presentAuditEntry } from '../presenters/security.js';
import type { RouteTable } from '../route-table.js';
import { AuditListSchema, AuditQuerySchema } from '../schemas/security.js';
import { validate } from '../validate.js';

export function addAuditRoutes(routes: RouteTable, { orm }: { orm: MikroORM }): void {
  routes.add({
    method: 'get',
    path: '/account/audit',
    scope: 'account',
    roles: ['account-admin'],
    docs: {
      summary: 'Configuration changes in the account and its tenants, newest first',
      tags: ['Account'],
      request: { query: AuditQuerySchema },
      responses: { 200: { description: 'A page of audit entries', ...jsonContent(AuditListSchema) }, ...problemResponses(400) },
    },
    handler: async (req, res, { accountId }) => {
      const query = validate(AuditQuerySchema, req.query, 'query');
      const where: FilterQuery<AuditEntry> = { accountId };
      if (query.since) where.createdAt = { $gte: new Date(query.since) };
      const page = await findPage(orm.em.fork(), AuditEntry, where, query, 'id');
      res.json({ items: page.items.map(presentAuditEntry), nextCursor: page.nextCursor });
    },
  });
}
