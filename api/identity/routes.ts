import { timingSafeEqual } from 'node:crypto';
import { SecurityKey } from '../../db/entities/index.js';
import { SecretOpenError, type SecretBox } from '../../db/secret-box.js';
import { hmacSignature, parseHmacHeader, type ParsedHmacHeader } from '../../domain/hmac-signature.js';
import { issueAccessToken } from '../auth/access-token.js';
import { unauthenticated } from '../auth/authenticate.js';
import { securityKeyContext } from '../keys/key-pair.js';
import type { RouteTable } from '../http/route-table.js';
import { AccessTokenSchema, HmacHeaderSchema } from './schemas.js';

export const HMAC_MAX_SKEW_SECONDS = 5 * 60;
/**
 * Nonces are kept past the window in which their timestamp is accepted (a timestamp up to the skew
 * ahead stays good for twice the skew), with as much again for clocks that differ between the API
 * processes and the database, whose clock says when a kept nonce is free.
 */
const NONCE_RETENTION_SECONDS = 3 * HMAC_MAX_SKEW_SECONDS;

// A nonce is taken if it is new, or if it was seen so long ago that its row merely awaits housekeeping.
const TAKE_NONCE = `
  insert into used_nonce (public_key, nonce, expires_at) values (?, ?, now() + make_interval(secs => ?))
  on conflict (public_key, nonce) do update set expires_at = excluded.expires_at where used_nonce.expires_at < now()
  returning nonce`;

export interface IdentityRouteDeps {
  secretBox: SecretBox;
  tokenSigningKey: Uint8Array;
  tokenTtlSeconds: number;
}

export function addIdentityRoutes(routes: RouteTable, deps: IdentityRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/identity/hmac',
    scope: 'public',
    roles: [],
    summary: 'Exchange an HMAC-signed request for an access token',
    description:
      'Authorization: Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}, where signature = ' +
      'base64(HMAC-SHA256(base64decode(privateKey), "{publicKey}:{nonce}:{epochSeconds}:{bodyHash}")) and ' +
      'bodyHash = base64(SHA-256(body)), empty without a body. Timestamps more than 5 minutes off and reused nonces are refused.',
    tags: ['Identity'],
    headers: HmacHeaderSchema,
    responses: { 201: { description: 'A short-lived access token', schema: AccessTokenSchema } },
    handler: async ({ req, em }) => {
      const header = parseHmacHeader(req.header('authorization'));
      if (!header)
        throw unauthenticated(
          'send Authorization: Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}',
          'invalid_authorization_header',
        );
      if (Math.abs(Date.now() / 1000 - header.epochSeconds) > HMAC_MAX_SKEW_SECONDS) {
        throw unauthenticated('the request timestamp is more than 5 minutes from the server clock', 'stale_request');
      }
      const key = await em.findOne(SecurityKey, { publicKey: header.publicKey });
      const rawBody = (req as { rawBody?: string }).rawBody ?? '';
      // An unknown key, a key this process cannot open and a wrong signature look the same to the caller.
      if (!key || !signatureMatches(privateKeyOf(key, deps.secretBox, req.log), header, rawBody)) {
        throw unauthenticated('the signature does not match', 'invalid_signature');
      }
      const taken = await em
        .getConnection()
        .execute(
          TAKE_NONCE,
          [header.publicKey, header.nonce, NONCE_RETENTION_SECONDS],
          'all',
          em.getTransactionContext(),
        );
      if (taken.length === 0) throw unauthenticated('this nonce was already used', 'nonce_reused');
      return {
        status: 201,
        body: await issueAccessToken(deps.tokenSigningKey, header.publicKey, deps.tokenTtlSeconds),
      };
    },
  });
}

function privateKeyOf(
  key: SecurityKey,
  box: SecretBox,
  log: { warn: (obj: object, msg: string) => void },
): string | undefined {
  try {
    return box.open(key.privateKeyCiphertext, securityKeyContext(key.publicKey));
  } catch (err) {
    if (!(err instanceof SecretOpenError)) throw err;
    log.warn(
      { publicKey: key.publicKey, reason: err.message },
      'a security key could not be opened; refusing its sign-in',
    );
    return undefined;
  }
}

function signatureMatches(privateKey: string | undefined, header: ParsedHmacHeader, body: string): boolean {
  if (privateKey === undefined) return false;
  const expected = Buffer.from(
    hmacSignature(privateKey, header.publicKey, header.nonce, header.epochSeconds, body),
    'base64',
  );
  const given = Buffer.from(header.signature, 'base64');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
