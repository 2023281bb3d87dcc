import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { findVoucher, VOUCHER_CATALOG } from '../../domain/voucher-catalog.js';
import { VoucherGroup } from '../../db/entities/index.js';
import { voucherAccepts } from '../../domain/voucher.js';
import { recordAudit } from '../audit/record-audit.js';
import { parseAmountAt } from '../../domain/money.js';
import { PageQuerySchema } from '../http/common-schemas.js';
import { findPage } from '../http/pagination.js';
import { ApiError, type FieldError } from '../http/problem.js';
import type { RouteTable } from '../http/route-table.js';
import { schemesUsingVoucherGroup } from '../schemes/scheme-store.js';
import { presentVoucher, presentVoucherGroup } from './presenter.js';
import {
  VoucherGroupBodySchema,
  VoucherGroupIdParamsSchema,
  VoucherGroupListSchema,
  VoucherGroupSchema,
  VoucherListSchema,
  VoucherSearchQuerySchema,
} from './schemas.js';

/** A voucher group of the tenant; locked (`lockMode`) by a change or delete, as findInstallation is, for schemes drawing on it. */
async function findGroup(
  em: EntityManager,
  tenantId: string,
  voucherGroupId: string,
  lockMode?: LockMode,
): Promise<VoucherGroup> {
  const group = await em.findOne(VoucherGroup, { id: voucherGroupId, tenantId }, { lockMode });
  if (!group) throw new ApiError(404, 'voucher_group_not_found', `no voucher group ${voucherGroupId}`);
  return group;
}

/** Every voucher of a group must be in the catalog, and listed once. */
function checkVouchers(vouchers: { voucherId: string }[]): void {
  const seen = new Set<string>();
  const errors: FieldError[] = [];
  vouchers.forEach(({ voucherId }, index) => {
    if (!findVoucher(voucherId))
      errors.push({
        path: `vouchers[${index}].voucherId`,
        code: 'voucher_not_found',
        message: `no voucher ${voucherId} in the catalog`,
      });
    else if (seen.has(voucherId))
      errors.push({ path: `vouchers[${index}].voucherId`, code: 'duplicate_voucher', message: 'listed twice' });
    seen.add(voucherId);
  });
  if (errors.length > 0)
    throw new ApiError(
      400,
      'validation_failed',
      `${errors.length} field${errors.length === 1 ? '' : 's'} failed validation`,
      errors,
    );
}

/** The voucher catalog, and the tenant's voucher groups that payout schemes draw on. */
export function addVoucherRoutes(routes: RouteTable): void {
  routes.add({
    method: 'get',
    path: '/catalog/vouchers',
    scope: 'tenant',
    roles: ['tenant-voucher-group-read'],
    summary: 'Search the voucher catalog',
    description:
      'By brand, country and currency; with an amount (and its currency), only vouchers that can be issued for it.',
    tags: ['Vouchers'],
    query: VoucherSearchQuerySchema,
    responses: { 200: { description: 'The vouchers that match', schema: VoucherListSchema } },
    handler: ({ query }) => {
      const amountMinor =
        query.amount !== undefined && query.currency
          ? parseAmountAt(query.amount, query.currency, 'query.amount')
          : undefined;
      const items = VOUCHER_CATALOG.filter(
        (voucher) =>
          (!query.brand || voucher.brand.toLowerCase() === query.brand.toLowerCase()) &&
          (!query.country || voucher.countries.includes(query.country)) &&
          (!query.currency || voucher.currencies.includes(query.currency)) &&
          (amountMinor === undefined || voucherAccepts(voucher, amountMinor, query.currency!)),
      );
      return { status: 200, body: { items: items.map(presentVoucher), nextCursor: null } };
    },
  });

  routes.add({
    method: 'post',
    path: '/voucher-groups',
    scope: 'tenant',
    roles: ['tenant-voucher-group-write'],
    summary: 'Create a voucher group',
    tags: ['Vouchers'],
    body: VoucherGroupBodySchema,
    responses: { 201: { description: 'The group', schema: VoucherGroupSchema } },
    handler: ({ body, em, context: { tenantId, principal } }) => {
      checkVouchers(body.vouchers);
      const group = em.create(VoucherGroup, {
        id: randomUUID(),
        tenantId,
        name: body.name,
        vouchers: body.vouchers,
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      recordAudit(em, principal, {
        action: 'voucher-group.create',
        targetType: 'voucher-group',
        targetId: group.id,
        details: { name: group.name },
      });
      return { status: 201, body: presentVoucherGroup(group) };
    },
  });

  routes.add({
    method: 'get',
    path: '/voucher-groups',
    scope: 'tenant',
    roles: ['tenant-voucher-group-read'],
    summary: 'List voucher groups, newest first',
    tags: ['Vouchers'],
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of voucher groups', schema: VoucherGroupListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await findPage(em, VoucherGroup, { tenantId }, query, 'id');
      return { status: 200, body: { items: page.items.map(presentVoucherGroup), nextCursor: page.nextCursor } };
    },
  });

  routes.add({
    method: 'get',
    path: '/voucher-groups/:voucherGroupId',
    scope: 'tenant',
    roles: ['tenant-voucher-group-read'],
    summary: 'Get a voucher group',
    tags: ['Vouchers'],
    params: VoucherGroupIdParamsSchema,
    responses: { 200: { description: 'The group', schema: VoucherGroupSchema } },
    handler: async ({ params, em, context: { tenantId } }) => ({
      status: 200,
      body: presentVoucherGroup(await findGroup(em, tenantId, params.voucherGroupId)),
    }),
  });

  routes.add({
    method: 'put',
    path: '/voucher-groups/:voucherGroupId',
    scope: 'tenant',
    roles: ['tenant-voucher-group-write'],
    summary: 'Replace a voucher group',
    tags: ['Vouchers'],
    params: VoucherGroupIdParamsSchema,
    body: VoucherGroupBodySchema,
    responses: { 200: { description: 'The group', schema: VoucherGroupSchema } },
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const group = await findGroup(em, tenantId, params.voucherGroupId, LockMode.PESSIMISTIC_WRITE);
      checkVouchers(body.vouchers);
      group.name = body.name;
      group.vouchers = body.vouchers;
      group.updatedAt = new Date();
      recordAudit(em, principal, {
        action: 'voucher-group.update',
        targetType: 'voucher-group',
        targetId: group.id,
        details: { name: group.name },
      });
      await em.flush();
      return { status: 200, body: presentVoucherGroup(group) };
    },
  });

  routes.add({
    method: 'delete',
    path: '/voucher-groups/:voucherGroupId',
    scope: 'tenant',
    roles: ['tenant-voucher-group-write'],
    summary: 'Delete a voucher group',
    description: 'Refused (409) while a payout scheme draws on it.',
    tags: ['Vouchers'],
    params: VoucherGroupIdParamsSchema,
    responses: { 204: { description: 'Deleted' } },
    problems: [409],
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      const group = await findGroup(em, tenantId, params.voucherGroupId, LockMode.PESSIMISTIC_WRITE);
      const schemes = await schemesUsingVoucherGroup(em, tenantId, group.id);
      if (schemes.length > 0) {
        throw new ApiError(
          409,
          'voucher_group_in_use',
          `${schemes.length} payout scheme(s) draw on this group; take it out of them first`,
          schemes.map((scheme) => ({
            path: `schemes.${scheme.id}`,
            code: 'scheme_uses_voucher_group',
            message: `scheme "${scheme.name}" draws on this group`,
          })),
        );
      }
      em.remove(group);
      recordAudit(em, principal, {
        action: 'voucher-group.delete',
        targetType: 'voucher-group',
        targetId: group.id,
        details: { name: group.name },
      });
      return { status: 204 };
    },
  });
}
