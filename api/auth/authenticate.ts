import type { MikroORM } from '@mikro-orm/postgresql';
import type { RequestHandler } from 'express';
import { SecurityKey } from '../../db/entities/index.js';
import { readRow } from '../../db/read-row.js';
import type { RowCache } from '../../db/row-cache.js';
import { ApiError } from '../http/problem.js';
import { VerifiedTokens } from './access-token.js';
import type { Principal } from './principal.js';

/** What a security key grants: who holds it and its roles (fixed when it is created). */
export type SecurityKeyGrant = Pick<SecurityKey, 'accountId' | 'tenantId' | 'roles'>;

/**
 * Bearer authentication. The token only names a key, looked up in `keys`: a deleted key is
 * dropped from it in the process that deleted it at once, and in the others when PostgreSQL tells
 * them (RowChanges), so deleting a key cuts off the tokens already issued to it.
 */
export function authenticate(orm: MikroORM, signingKey: Uint8Array, keys: RowCache<SecurityKeyGrant>): RequestHandler {
  const tokens = new VerifiedTokens(signingKey);
  return async (req, res, next) => {
    const header = req.header('authorization') ?? '';
    // Our tokens are a few hundred characters; anything much longer is refused before it is parsed.
    const match = header.length <= 2048 ? /^Bearer ([A-Za-z0-9\-_.]+)$/.exec(header) : null;
    if (!match) throw unauthenticated('send Authorization: Bearer {accessToken} (from POST /v1/identity/hmac)');
    const publicKey = await tokens.publicKeyOf(match[1]);
    if (!publicKey) throw unauthenticated('the access token is invalid or expired');
    const key = await keys.read(publicKey, () =>
      readRow(orm.em, SecurityKey, { publicKey }, ['accountId', 'tenantId', 'roles']),
    );
    if (!key) throw unauthenticated('the access token is invalid or expired');
    const principal: Principal = {
      publicKey,
      accountId: key.accountId,
      tenantId: key.tenantId ?? null,
      roles: key.roles,
    };
    res.locals.principal = principal;
    req.log?.setBindings?.({
      publicKey,
      accountId: key.accountId,
      ...(key.tenantId ? { tenantId: key.tenantId } : {}),
    });
    next();
  };
}

/**
 * `authenticate`, its refusals counted by `failures` (a limit per client address): past it, a caller
 * guessing tokens, or sending bodies with none, is answered 429. Requests that authenticate count
 * against their key's own limit, not this one.
 */
export function countingFailures(authenticate: RequestHandler, failures: RequestHandler): RequestHandler {
  return (req, res, next) => {
    Promise.resolve()
      .then(() => authenticate(req, res, next))
      .catch((err: unknown) => {
        if (!(err instanceof ApiError) || err.status !== 401) return next(err);
        failures(req, res, (limited?: unknown) => next(limited ?? err));
      });
  };
}

export function unauthenticated(detail: string, code = 'unauthenticated'): ApiError {
  return new ApiError(401, code, detail, undefined, { 'www-authenticate': 'Bearer' });
}
