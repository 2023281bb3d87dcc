import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { PaymentInstruction, Scheme, SchemeVersion } from '../../db/entities/index.js';
import { LIVE_INSTRUCTION_STATUSES } from '../../domain/instruction-status.js';
import { evaluateScheme, type SchemeKind, type SchemeRule } from '../../domain/scheme.js';
import type { Role } from '../../domain/roles.js';
import { recordAudit } from '../audit/record-audit.js';
import { PageQuerySchema } from '../http/common-schemas.js';
import { findPage } from '../http/pagination.js';
import { ApiError } from '../http/problem.js';
import type { RouteTable } from '../http/route-table.js';
import { z } from '../http/zod.js';
import { parseAmountAt } from '../../domain/money.js';
import { presentScheme } from './presenter.js';
import { checkRules, currentRules, findScheme } from './scheme-store.js';
import { forgetting, type ForgetsRows } from '../../db/row-cache.js';
import { lockTenantRow } from '../../db/tenant-lock.js';
import { OptionsQuerySchema, OptionsSchema, SchemeIdParamsSchema, schemeBodySchema, schemeSchema } from './schemas.js';

/**
 * Live schemes of one kind a tenant may have: an order reads them all (its default and the one it
 * names among them) while its tenant's are not cached, and each is up to a request's size.
 */
export const MAX_SCHEMES_PER_KIND = 50;

const KINDS: { kind: SchemeKind; noun: string; tag: string; read: Role; write: Role }[] = [
  {
    kind: 'collect',
    noun: 'collection scheme',
    tag: 'Collection schemes',
    read: 'tenant-collect-scheme-read',
    write: 'tenant-collect-scheme-write',
  },
  {
    kind: 'payout',
    noun: 'payout scheme',
    tag: 'Payout schemes',
    read: 'tenant-payout-scheme-read',
    write: 'tenant-payout-scheme-write',
  },
];

/**
 * Collection and payout schemes (ARCHITECTURE.md, "Schemes"): ordered rules that decide which
 * installed apps and payment methods a payment may use. Every edit publishes a new version.
 */
export function addSchemeRoutes(routes: RouteTable, { schemes }: { schemes: ForgetsRows }): void {
  for (const { kind, noun, tag, read, write } of KINDS) {
    const base = `/schemes/${kind}`;
    const Body = schemeBodySchema(kind);
    const View = schemeSchema(kind);

    /** Writes a version of the scheme and makes it current; the default moves here if asked, and stays if not said. */
    async function publish(em: EntityManager, scheme: Scheme, body: z.output<typeof Body>) {
      const rules = body.rules as SchemeRule[];
      await checkRules(em, scheme.tenantId, kind, rules);
      const isDefault = body.isDefault ?? scheme.isDefault;
      if (isDefault) {
        await em.nativeUpdate(
          Scheme,
          { tenantId: scheme.tenantId, kind, isDefault: true, id: { $ne: scheme.id } },
          { isDefault: false },
        );
      }
      scheme.name = body.name;
      scheme.isDefault = isDefault;
      scheme.currentVersion += 1;
      scheme.updatedAt = new Date();
      em.create(SchemeVersion, {
        schemeId: scheme.id,
        version: scheme.currentVersion,
        tenantId: scheme.tenantId,
        rules,
        createdAt: new Date(),
      });
      await em.flush();
      return rules;
    }

    routes.add({
      method: 'post',
      path: base,
      scope: 'tenant',
      roles: [write],
      summary: `Create a ${noun}`,
      description:
        'Every option’s app must be installed, and offer the scheme’s direction and the methods named. A tenant has at ' +
        `most ${MAX_SCHEMES_PER_KIND} live schemes of each kind (409 too_many_schemes).`,
      tags: [tag],
      body: Body,
      responses: { 201: { description: `The ${noun}, version 1`, schema: View } },
      problems: [409],
      handler: async ({ body, em, afterCommit, context: { tenantId, principal } }) => {
        await lockTenantRow(em, tenantId);
        if ((await em.count(Scheme, { tenantId, kind, deletedAt: null })) >= MAX_SCHEMES_PER_KIND) {
          throw new ApiError(
            409,
            'too_many_schemes',
            `a tenant has at most ${MAX_SCHEMES_PER_KIND} ${noun}s; edit one, or delete one no longer used`,
          );
        }
        // Other API processes hear of it from PostgreSQL; an order taken here next must see it.
        afterCommit(forgetting(schemes, tenantId));
        const scheme = em.create(Scheme, {
          id: randomUUID(),
          tenantId,
          kind,
          name: body.name,
          currentVersion: 0,
          isDefault: false,
          createdAt: new Date(),
          updatedAt: new Date(),
        });
        const rules = await publish(em, scheme, body);
        recordAudit(em, principal, {
          action: `${kind}-scheme.create`,
          targetType: `${kind}-scheme`,
          targetId: scheme.id,
          details: { name: scheme.name, version: 1 },
        });
        return { status: 201, body: presentScheme(scheme, rules) };
      },
    });

    routes.add({
      method: 'get',
      path: base,
      scope: 'tenant',
      roles: [read],
      summary: `List ${noun}s, newest first`,
      tags: [tag],
      query: PageQuerySchema,
      responses: {
        200: {
          description: `A page of ${noun}s`,
          schema: z.object({ items: z.array(View), nextCursor: z.string().nullable() }),
        },
      },
      handler: async ({ query, em, context: { tenantId } }) => {
        const page = await findPage(em, Scheme, { tenantId, kind, deletedAt: null }, query, 'id');
        const versions = page.items.length
          ? await em.find(SchemeVersion, {
              $or: page.items.map((s) => ({ schemeId: s.id, version: s.currentVersion })),
            })
          : [];
        const rulesOf = new Map(versions.map((v) => [v.schemeId, v.rules]));
        return {
          status: 200,
          body: {
            items: page.items.map((s) => presentScheme(s, rulesOf.get(s.id) ?? [])),
            nextCursor: page.nextCursor,
          },
        };
      },
    });

    routes.add({
      method: 'get',
      path: `${base}/:schemeId`,
      scope: 'tenant',
      roles: [read],
      summary: `Get a ${noun} as its current version has it`,
      tags: [tag],
      params: SchemeIdParamsSchema,
      responses: { 200: { description: `The ${noun}`, schema: View } },
      handler: async ({ params, em, context: { tenantId } }) => {
        const scheme = await findScheme(em, tenantId, kind, params.schemeId);
        return { status: 200, body: presentScheme(scheme, await currentRules(em, scheme)) };
      },
    });

    routes.add({
      method: 'put',
      path: `${base}/:schemeId`,
      scope: 'tenant',
      roles: [write],
      summary: `Edit a ${noun}: publishes a new version`,
      description:
        'Its name and rules are replaced; `isDefault` left out is kept. Instructions already resolved keep the version ' +
        'they were resolved with. Two edits at once go one after the other, the later on the version the earlier published.',
      tags: [tag],
      params: SchemeIdParamsSchema,
      body: Body,
      responses: { 200: { description: `The ${noun}, its new version`, schema: View } },
      handler: async ({ params, body, em, afterCommit, context: { tenantId, principal } }) => {
        afterCommit(forgetting(schemes, tenantId));
        const scheme = await findScheme(em, tenantId, kind, params.schemeId, LockMode.PESSIMISTIC_WRITE);
        const rules = await publish(em, scheme, body);
        recordAudit(em, principal, {
          action: `${kind}-scheme.update`,
          targetType: `${kind}-scheme`,
          targetId: scheme.id,
          details: { name: scheme.name, version: scheme.currentVersion },
        });
        return { status: 200, body: presentScheme(scheme, rules) };
      },
    });

    routes.add({
      method: 'delete',
      path: `${base}/:schemeId`,
      scope: 'tenant',
      roles: [write],
      summary: `Delete a ${noun}`,
      description: 'Refused (409) while an instruction that is not final was resolved with it.',
      tags: [tag],
      params: SchemeIdParamsSchema,
      responses: { 204: { description: 'Deleted' } },
      problems: [409],
      handler: async ({ params, em, afterCommit, context: { tenantId, principal } }) => {
        afterCommit(forgetting(schemes, tenantId));
        const scheme = await findScheme(em, tenantId, kind, params.schemeId, LockMode.PESSIMISTIC_WRITE);
        const live = await em.count(PaymentInstruction, {
          tenantId,
          schemeId: scheme.id,
          status: { $in: [...LIVE_INSTRUCTION_STATUSES] },
        });
        if (live > 0)
          throw new ApiError(
            409,
            'scheme_in_use',
            `${live} instruction(s) not yet final were resolved with this scheme`,
          );
        scheme.deletedAt = new Date();
        scheme.isDefault = false;
        recordAudit(em, principal, {
          action: `${kind}-scheme.delete`,
          targetType: `${kind}-scheme`,
          targetId: scheme.id,
          details: { name: scheme.name },
        });
        return { status: 204 };
      },
    });

    routes.add({
      method: 'get',
      path: `${base}/:schemeId/options`,
      scope: 'tenant',
      roles: [read],
      summary: `The payment options a ${noun} offers for an amount, currency and country`,
      description:
        'The first rule that matches and offers an app paying in the currency and country (the catalog’s) wins; each ' +
        'method goes to such an app with the lowest priority. No match: no options.',
      tags: [tag],
      params: SchemeIdParamsSchema,
      query: OptionsQuerySchema,
      responses: { 200: { description: 'The options, best first', schema: OptionsSchema } },
      handler: async ({ params, query, em, context: { tenantId } }) => {
        const scheme = await findScheme(em, tenantId, kind, params.schemeId);
        const amountMinor = parseAmountAt(query.amount, query.currency, 'query.amount');
        const { options } = evaluateScheme(await currentRules(em, scheme), {
          amountMinor,
          currency: query.currency,
          country: query.country,
        });
        return { status: 200, body: { schemeId: scheme.id, version: scheme.currentVersion, options } };
      },
    });
  }
}
