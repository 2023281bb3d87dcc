import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { grants, type Role } from '../domain/roles.js';
import type { Principal } from './auth/principal.js';
import { problemResponses } from './openapi.js';
import { ApiError } from './problem.js';
import { z } from './zod.js';

/**
 * Who may call a route. `public` is for the token exchange alone; `account` routes act for the
 * caller's account (x-account-id), `tenant` routes for the caller's tenant (x-tenant-id).
 */
export type RouteScope = 'public' | 'account' | 'tenant';

export interface AccountContext {
  principal: Principal;
  accountId: string;
}

export interface TenantContext extends AccountContext {
  tenantId: string;
}

type ContextOf<S extends RouteScope> = S extends 'tenant' ? TenantContext : S extends 'account' ? AccountContext : undefined;

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteDefinition<S extends RouteScope = RouteScope> {
  method: Method;
  /** Express path under /v1, e.g. `/order-management/:orderRef`. */
  path: string;
  scope: S;
  /** Any one of these lets the key in (the scope's admin role always does). Empty only for public routes. */
  roles: Role[];
  docs: Omit<RouteConfig, 'method' | 'path'>;
  handler: (req: Request, res: Response, context: ContextOf<S>) => unknown;
}

export interface RouteGuards {
  authenticate: RequestHandler;
  /** Per-key limits; runs after authentication so it can count by key. */
  rateLimit: RequestHandler;
  publicRateLimit: RequestHandler;
  idempotency: RequestHandler;
}

const SCOPE_HEADERS = {
  account: z.object({ 'x-account-id': z.uuid().openapi({ description: 'Account the call acts for' }) }),
  tenant: z.object({ 'x-tenant-id': z.uuid().openapi({ description: 'Tenant the call acts for' }) }),
};

/**
 * The only way to add a /v1 route. Every route states its scope and roles, and gets
 * authentication, scope check, role check, rate limit and idempotency in that order, plus its
 * OpenAPI entry. There is no handle on the underlying router, so no route can skip them.
 */
export class RouteTable {
  private readonly definitions: RouteDefinition[] = [];

  constructor(private readonly registry: OpenAPIRegistry) {}

  add<S extends RouteScope>(definition: RouteDefinition<S>): void {
    if (definition.scope !== 'public' && definition.roles.length === 0) {
      throw new Error(`${definition.method.toUpperCase()} ${definition.path} must declare the roles it needs`);
    }
    this.definitions.push(definition as unknown as RouteDefinition);
    const scopeHeaders = definition.scope === 'public' ? undefined : SCOPE_HEADERS[definition.scope as 'account' | 'tenant'];
    const request = definition.docs.request ?? {};
    const headers = request.headers as z.ZodObject | undefined;
    this.registry.registerPath({
      ...definition.docs,
      method: definition.method,
      path: `/v1${definition.path.replace(/:(\w+)/g, '{$1}')}`,
      description: [definition.docs.description, definition.roles.length ? `Roles: ${definition.roles.join(' or ')} (or the scope's admin role).` : '']
        .filter(Boolean)
        .join('\n\n'),
      ...(definition.scope === 'public' ? {} : { security: [{ bearerAuth: [] }] }),
      request: {
        ...request,
        ...(scopeHeaders || headers ? { headers: scopeHeaders && headers ? scopeHeaders.extend(headers.shape) : (scopeHeaders ?? headers) } : {}),
      },
      responses: {
        ...definition.docs.responses,
        ...problemResponses(...(definition.scope === 'public' ? [401, 429] : [401, 403, 404, 429])),
      },
    });
  }

  /** Method, path, scope and roles of every route: what the isolation and role tests walk. */
  list(): Pick<RouteDefinition, 'method' | 'path' | 'scope' | 'roles'>[] {
    return this.definitions.map(({ method, path, scope, roles }) => ({ method, path, scope, roles }));
  }

  router(guards: RouteGuards): Router {
    const router = Router();
    for (const definition of this.definitions) {
      const handler: RequestHandler = async (req, res) => {
        await definition.handler(req, res, res.locals.context);
      };
      const chain: RequestHandler[] =
        definition.scope === 'public'
          ? [guards.publicRateLimit, handler]
          : [guards.authenticate, guards.rateLimit, scopeGuard(definition.scope), roleGuard(definition.roles), guards.idempotency, handler];
      router[definition.method](definition.path, ...chain);
    }
    return router;
  }
}

function scopeGuard(scope: 'account' | 'tenant'): RequestHandler {
  return (req, res, next) => {
    const principal: Principal = res.locals.principal;
    const isTenantKey = principal.tenantId !== null;
    if (scope === 'account' && isTenantKey) throw new ApiError(403, 'account_key_required', 'this route needs an account key');
    if (scope === 'tenant' && !isTenantKey) throw new ApiError(403, 'tenant_key_required', 'this route needs a tenant key');
    const header = scope === 'account' ? 'x-account-id' : 'x-tenant-id';
    const value = req.header(header)?.toLowerCase();
    if (!value) {
      throw new ApiError(400, 'validation_failed', `the ${header} header is required`, [
        { path: `headers.${header}`, code: 'required', message: `must name the ${scope} the call acts for` },
      ]);
    }
    if (scope === 'account') {
      if (value !== principal.accountId) throw new ApiError(404, 'account_not_found', 'no such account');
      res.locals.context = { principal, accountId: principal.accountId } satisfies AccountContext;
    } else {
      // Another tenant is "not found", never "forbidden": a key learns nothing of tenants it cannot reach.
      if (value !== principal.tenantId) throw new ApiError(404, 'tenant_not_found', 'no such tenant');
      res.locals.context = { principal, accountId: principal.accountId, tenantId: principal.tenantId } satisfies TenantContext;
    }
    next();
  };
}

function roleGuard(roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const principal: Principal = res.locals.principal;
    if (!roles.some((role) => grants(principal.roles, role))) {
      throw new ApiError(403, 'missing_role', `this route needs one of the roles: ${roles.join(', ')}`);
    }
    next();
  };
}
