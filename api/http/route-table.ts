import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { IsolationLevel, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { ZodObject, ZodType } from 'zod';
import { transactionally } from '../../db/transactionally.js';
import { grants, type Role } from '../../domain/roles.js';
import type { Principal } from '../auth/principal.js';
import { IdempotencyHeaderSchema, RequiredIdempotencyHeaderSchema } from './common-schemas.js';
import type { IdempotencyStore } from './idempotency.js';
import type { Reply } from './reply.js';
import './locals.js';
import { problemResponses } from './openapi.js';
import { ApiError } from './problem.js';
import { validate } from './validate.js';
import { z } from './zod.js';

type Transactional = boolean | 'with-idempotency-key' | 'snapshot';

export type { Reply };

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

type ContextOf<S extends RouteScope> = S extends 'tenant'
  ? TenantContext
  : S extends 'account'
    ? AccountContext
    : undefined;
type Parsed<T> = T extends ZodType ? z.output<T> : undefined;

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteCall<S extends RouteScope, P, Q, B> {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
  context: ContextOf<S>;
  /**
   * The request's unit of work. For anything but GET it is inside one transaction that also stores
   * the idempotent answer, so a request's writes and its stored answer commit together or not at all.
   * Use it for every query: with a pool of one connection, a second fork would wait forever.
   */
  em: EntityManager;
  req: Request;
  /** Runs once the transaction has committed (and not at all if it rolls back): calls to other systems. */
  afterCommit: (step: () => Promise<void>) => void;
}

export interface RouteDefinition<
  S extends RouteScope,
  P extends ZodType | undefined,
  Q extends ZodType | undefined,
  B extends ZodType | undefined,
> {
  method: Method;
  /** Express path under /v1, e.g. `/order-management/:orderRef`. */
  path: string;
  scope: S;
  /** Any one of these lets the key in (the scope's admin role always does). Empty only for public routes. */
  roles: Role[];
  summary: string;
  description?: string;
  tags: string[];
  /** Validated before the handler runs; a failure is a 400 naming each field. They are also the OpenAPI document. */
  params?: P;
  query?: Q;
  body?: B;
  /**
   * The body may be left out, and is then `{}`: for a `POST` whose every field is optional (a retry, a
   * rotation), which clients send with no body. Not for a `PATCH` (an empty change is a mistake) nor
   * a route whose body is signed as sent. The schema must take `{}`.
   */
  bodyMayBeLeftOut?: true;
  /** Request headers, for the document only (the scope headers and Idempotency-Key are added by the table). */
  headers?: ZodObject;
  /**
   * Successful answers by status; problem answers (400, 401, 403, 404, 429 …) are added by the table.
   * `schema` is a JSON body; `media` names other bodies by content type (a streamed export).
   */
  responses: Record<number, ResponseDeclaration>;
  /** Further problem statuses this route can answer, e.g. 409. */
  problems?: number[];
  /**
   * False for a route that writes nothing to the database itself (it asks a workflow, which
   * projects): it runs without holding a transaction, so a slow answer from Temporal holds no
   * connection. Its idempotency rests on what it calls (an update id), its answer is stored after.
   * 'with-idempotency-key' for a route whose writes are one statement (atomic on its own): it runs in
   * a transaction only when an Idempotency-Key's answer must commit with its writes, and otherwise
   * spares the request its BEGIN and COMMIT.
   * A GET runs in no transaction, unless 'snapshot': a read of several statements whose answers must
   * agree (an order's status and its instructions'), in one read-only transaction that sees the
   * database as of its first statement, where otherwise a projection committing between two reads
   * shows half of it.
   */
  transactional?: Transactional;
  /** A change that must not be made twice by a retried request (a refund): without an Idempotency-Key it is a 400. */
  idempotencyKeyRequired?: boolean;
  /**
   * The body's field holding a batch's items: the body may be as large as `BATCH_BODY_LIMIT` rather
   * than `BODY_LIMIT`, and each item is left to the handler to check for what the API never takes
   * (`unstorableRefusal`), so that one item refuses only itself.
   */
  batchItems?: string;
  /**
   * Checks that reach outside the database (a host name resolved), made with the parsed input before
   * the request's transaction opens, so that no transaction waits on them; `em` is outside it (a
   * connection is taken only for each query). They may refuse. With an Idempotency-Key they run once
   * the key is claimed: a request sent again is answered from what is stored, not checked again.
   */
  precheck?: (input: Omit<RouteCall<S, P, Q, B>, 'afterCommit'>) => Promise<void>;
  handler: (call: RouteCall<S, P, Q, B>) => Reply | Promise<Reply>;
}

interface ResponseDeclaration {
  description: string;
  schema?: ZodType;
  media?: Record<string, ZodType>;
}

interface StoredRoute {
  method: Method;
  path: string;
  scope: RouteScope;
  roles: Role[];
  params?: ZodType;
  query?: ZodType;
  body?: ZodType;
  bodyMayBeLeftOut?: true;
  responses: Record<number, ResponseDeclaration>;
  transactional?: Transactional;
  idempotencyKeyRequired?: boolean;
  batchItems?: string;
  precheck?: (input: Omit<RouteCall<RouteScope, unknown, unknown, unknown>, 'afterCommit'>) => Promise<void>;
  handler: (call: RouteCall<RouteScope, unknown, unknown, unknown>) => Reply | Promise<Reply>;
}

export interface RouteGuards {
  authenticate: RequestHandler;
  /** Per-key limits; runs after authentication so it can count by key. */
  rateLimit: RequestHandler;
  publicRateLimit: RequestHandler;
}

export interface RouteRuntime {
  orm: MikroORM;
  idempotency: IdempotencyStore;
  /** Check every answer against the schema its route declares (tests turn this on): a drift is a 500. */
  checkResponses?: boolean;
}

const SCOPE_HEADERS = {
  account: z.object({ 'x-account-id': z.uuid().openapi({ description: 'Account the call acts for' }) }),
  tenant: z.object({ 'x-tenant-id': z.uuid().openapi({ description: 'Tenant the call acts for' }) }),
};

/**
 * The only way to add a /v1 route. Every route states its scope, roles and the schemas of its
 * input, and gets authentication, scope check, role check, rate limit, validation, idempotency and
 * its OpenAPI entry from here, in that order. Docs and validation come from the same schemas, so
 * they cannot drift; there is no handle on the underlying router, so no route can skip a step.
 */
export class RouteTable {
  private readonly routes: StoredRoute[] = [];

  constructor(private readonly registry: OpenAPIRegistry) {}

  add<
    S extends RouteScope,
    P extends ZodType | undefined = undefined,
    Q extends ZodType | undefined = undefined,
    B extends ZodType | undefined = undefined,
  >(definition: RouteDefinition<S, P, Q, B>): void {
    if (definition.scope !== 'public' && definition.roles.length === 0) {
      throw new Error(`${definition.method.toUpperCase()} ${definition.path} must declare the roles it needs`);
    }
    // A GET runs in no transaction or in a snapshot; a change in a transaction of its own or in none.
    const { method, transactional } = definition;
    if (method === 'get' ? transactional !== undefined && transactional !== 'snapshot' : transactional === 'snapshot') {
      throw new Error(`${method.toUpperCase()} ${definition.path} cannot be transactional: ${String(transactional)}`);
    }
    if (definition.bodyMayBeLeftOut && !definition.body?.safeParse({}).success) {
      throw new Error(`${method.toUpperCase()} ${definition.path}: a body that may be left out must take {}`);
    }
    this.routes.push(definition);
    this.document(definition as unknown as RouteDefinition<RouteScope, ZodType, ZodType, ZodType>);
  }

  /**
   * The paths (under /v1) of the routes whose body may be a batch, and the field holding its items:
   * the body parser gives them the larger limit, and the check for unstorable strings leaves the items to them.
   */
  batchItems(): Map<string, string> {
    return new Map(this.routes.flatMap((route) => (route.batchItems ? [[`/v1${route.path}`, route.batchItems]] : [])));
  }

  /** Method, path, scope and roles of every route: what the isolation and role tests walk. */
  list(): Pick<StoredRoute, 'method' | 'path' | 'scope' | 'roles'>[] {
    return this.routes.map(({ method, path, scope, roles }) => ({ method, path, scope, roles }));
  }

  router(guards: RouteGuards, runtime: RouteRuntime): Router {
    const router = Router();
    for (const route of this.routes) {
      const labelled: RequestHandler = (req, res, next) => {
        res.locals.route = `${req.baseUrl}${route.path}`;
        next();
      };
      const chain: RequestHandler[] =
        route.scope === 'public'
          ? [labelled, guards.publicRateLimit]
          : [labelled, guards.authenticate, guards.rateLimit, scopeGuard(route.scope), roleGuard(route.roles)];
      router[route.method](route.path, ...chain, (req, res) => run(route, req, res, runtime));
    }
    // Any other method on a known path: 405 naming the ones it has, not a 404 that says the path is unknown.
    for (const [path, methods] of this.methodsByPath()) {
      const allow = methods.map((m) => m.toUpperCase()).join(', ');
      router.all(path, (req) => {
        throw new ApiError(
          405,
          'method_not_allowed',
          `${req.method} is not a method of this route; it has ${allow}`,
          undefined,
          { allow },
        );
      });
    }
    return router;
  }

  private methodsByPath(): Map<string, string[]> {
    const byPath = new Map<string, string[]>();
    for (const { path, method } of this.routes) {
      byPath.set(path, [...(byPath.get(path) ?? []), ...(method === 'get' ? ['get', 'head'] : [method])]);
    }
    return byPath;
  }

  private document(definition: RouteDefinition<RouteScope, ZodType, ZodType, ZodType>): void {
    const scopeHeaders = definition.scope === 'public' ? undefined : SCOPE_HEADERS[definition.scope];
    const headerShapes = [
      scopeHeaders,
      definition.headers,
      definition.idempotencyKeyRequired
        ? RequiredIdempotencyHeaderSchema
        : honoursIdempotencyKey(definition)
          ? IdempotencyHeaderSchema
          : undefined,
    ]
      .filter((h): h is ZodObject => h !== undefined)
      .map((h) => h.shape);
    const responses: Record<string, ResponseConfig> = {};
    for (const [status, { description, schema, media }] of Object.entries(definition.responses)) {
      const content = {
        ...(schema ? { 'application/json': { schema } } : {}),
        ...Object.fromEntries(Object.entries(media ?? {}).map(([type, body]) => [type, { schema: body }])),
      };
      responses[status] = { description, ...(Object.keys(content).length ? { content } : {}) };
    }
    const problems = [
      ...(definition.params || definition.query || definition.body || definition.scope !== 'public' ? [400] : []),
      401,
      ...(definition.scope === 'public' ? [] : [403, 404]),
      ...(definition.body ? [413, 415] : []),
      ...(honoursIdempotencyKey(definition) ? [409, 422] : []),
      429,
      ...(definition.problems ?? []),
    ];
    this.registry.registerPath({
      method: definition.method,
      path: `/v1${definition.path.replace(/:(\w+)/g, '{$1}')}`,
      summary: definition.summary,
      description: [
        definition.description,
        definition.roles.length ? `Roles: ${definition.roles.join(' or ')} (or the scope's admin role).` : '',
      ]
        .filter(Boolean)
        .join('\n\n'),
      tags: definition.tags,
      ...(definition.scope === 'public' ? {} : { security: [{ bearerAuth: [] }] }),
      request: {
        ...(definition.params ? { params: definition.params as ZodObject } : {}),
        ...(definition.query ? { query: definition.query as ZodObject } : {}),
        ...(headerShapes.length ? { headers: z.object(Object.assign({}, ...headerShapes)) } : {}),
        ...(definition.body
          ? {
              body: {
                required: !definition.bodyMayBeLeftOut,
                content: { 'application/json': { schema: definition.body } },
              },
            }
          : {}),
      },
      responses: { ...responses, ...problemResponses(...new Set(problems)) },
    });
  }
}

/**
 * The body a request sent, as it is validated and fingerprinted: none at all is `{}` where it may be
 * left out, and `null` elsewhere (refused where a body is needed). A route that takes no body
 * fingerprints none, whatever was sent: a retry that sends `{}` where the first sent nothing is the same request.
 */
function sentBody(route: StoredRoute, req: Request): unknown {
  if (!route.body) return null;
  return (req.body as unknown) ?? (route.bodyMayBeLeftOut ? {} : null);
}

async function run(route: StoredRoute, req: Request, res: Response, runtime: RouteRuntime): Promise<void> {
  const body = sentBody(route, req);
  const input = {
    params: route.params ? validate(route.params, req.params, 'params') : undefined,
    query: route.query ? validate(route.query, req.query, 'query') : undefined,
    body: route.body ? validate(route.body, body) : undefined,
  };
  const context = res.locals.context;
  const precheck = async () =>
    route.precheck?.({ ...input, context, req, em: runtime.orm.em.fork() } as Parameters<
      NonNullable<StoredRoute['precheck']>
    >[0]);
  const afterCommit: (() => Promise<void>)[] = [];
  const call = async (em: EntityManager) =>
    route.handler({ ...input, context, em, req, afterCommit: (step) => afterCommit.push(step) } as RouteCall<
      RouteScope,
      unknown,
      unknown,
      unknown
    >);

  let reply: Reply;
  if (route.method === 'get') {
    await precheck();
    const em = runtime.orm.em.fork();
    reply =
      route.transactional === 'snapshot'
        ? await transactionally(em, call, { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true })
        : await call(em);
  } else {
    const key = honoursIdempotencyKey(route) ? req.header('idempotency-key') : undefined;
    if (key === undefined && route.idempotencyKeyRequired) {
      throw new ApiError(400, 'validation_failed', 'this change needs an Idempotency-Key', [
        { path: 'headers.idempotency-key', code: 'required', message: 'send a key unique to this change' },
      ]);
    }
    const transactional = route.transactional ?? true;
    if (key === undefined) {
      await precheck();
      reply =
        transactional === true ? await transactionally(runtime.orm.em.fork(), call) : await call(runtime.orm.em.fork());
    } else {
      // Idempotency keys are only read on authenticated routes, which always have a context.
      const { tenantId, accountId, principal } = context!;
      const scope = tenantId ? `tenant:${tenantId}` : `account:${accountId}`;
      const outcome = await runtime.idempotency.run(
        {
          scope,
          actor: principal.publicKey,
          key,
          method: req.method,
          path: req.originalUrl,
          body,
        },
        call,
        { transactional: transactional !== false, precheck },
      );
      reply = outcome.reply;
      if (outcome.replayed) {
        await send(res, { ...reply, headers: { ...reply.headers, 'idempotent-replayed': 'true' } });
        return;
      }
    }
  }
  for (const step of afterCommit) await step();
  if (runtime.checkResponses) checkResponse(route, reply);
  await send(res, reply);
}

/**
 * Every authenticated route that changes something takes an Idempotency-Key, whatever its method:
 * a key sent with one change can never silently stand for another.
 */
function honoursIdempotencyKey(route: { method: Method; scope: RouteScope }): boolean {
  return route.method !== 'get' && route.scope !== 'public';
}

function send(res: Response, reply: Reply): void | Promise<void> {
  res.status(reply.status).set(reply.headers ?? {});
  if (reply.stream) return reply.stream(res);
  if (reply.body === undefined) res.end();
  else res.json(reply.body);
}

function checkResponse(route: StoredRoute, reply: Reply): void {
  const declared = route.responses[reply.status];
  const where = `${route.method.toUpperCase()} ${route.path} answered ${reply.status}`;
  if (!declared) throw new Error(`${where}, which its route does not declare`);
  if (declared.schema) {
    const result = declared.schema.safeParse(reply.body);
    if (!result.success) throw new Error(`${where} with a body its schema refuses: ${result.error.message}`);
  } else if (reply.body !== undefined) {
    throw new Error(`${where} with a body, but declares none`);
  }
}

function scopeGuard(scope: 'account' | 'tenant'): RequestHandler {
  return (req, res, next) => {
    const principal = res.locals.principal!;
    const isTenantKey = principal.tenantId !== null;
    if (scope === 'account' && isTenantKey)
      throw new ApiError(403, 'account_key_required', 'this route needs an account key');
    if (scope === 'tenant' && !isTenantKey)
      throw new ApiError(403, 'tenant_key_required', 'this route needs a tenant key');
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
      res.locals.context = {
        principal,
        accountId: principal.accountId,
        tenantId: principal.tenantId,
      } satisfies TenantContext;
    }
    next();
  };
}

function roleGuard(roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const principal = res.locals.principal!;
    if (!roles.some((role) => grants(principal.roles, role))) {
      throw new ApiError(403, 'missing_role', `this route needs one of the roles: ${roles.join(', ')}`);
    }
    next();
  };
}
