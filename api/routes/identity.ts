import { timingSafeEqual } from 'node:crypto';
import { UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/postgresql';
import { SecurityKey, UsedNonce } from '../../db/entities/index.js';
import { hmacSignature, parseHmacHeader } from '../../domain/hmac-signature.js';
import { issueAccessToken } from '../auth/access-token.js';
import { unauthenticated } from '../auth/authenticate.js';
import type { SecretBox } from '../auth/secret-box.js';
import type { RouteTable } from '../route-table.js';
import { AccessTokenSchema, HmacHeaderSchema } from '../schemas/security.js';

export const HMAC_MAX_SKEW_SECONDS = 5 * 60;
/** Nonces are kept a little past the window in which their timestamp is accepted. */
const NONCE_RETENTION_MS = 2 * HMAC_MAX_SKEW_SECONDS * 1000;

export interface IdentityRouteDeps {
  orm: MikroORM;
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
    docs: {
      summary: 'Exchange an HMAC-signed request for an access token',
      description:
        'Authorization: Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}, where signature = ' +
        'base64(HMAC-SHA256(base64decode(privateKey), "{publicKey}:{nonce}:{epochSeconds}:{bodyHash}")) and ' +
        'bodyHash = base64(SHA-256(body)), empty without a body. Timestamps more than 5 minutes off and reused nonces are refused.',
      tags: ['Identity'],
      request: { headers: HmacHeaderSchema },
      responses: { 201: { description: 'A short-lived access token', content: { 'application/json': { schema: AccessTokenSchema } } } },
    },
    handler: async (req, res) => {
      const header = parseHmacHeader(req.header('authorization'));
      if (!header) throw unauthenticated('send Authorization: Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}', 'invalid_authorization_header');
      if (Math.abs(Date.now() / 1000 - header.epochSeconds) > HMAC_MAX_SKEW_SECONDS) {
        throw unauthenticated('the request timestamp is more than 5 minutes from the server clock', 'stale_request');
      }
      const em = deps.orm.em.fork();
      const key = await em.findOne(SecurityKey, { publicKey: header.publicKey });
      const rawBody = (req as { rawBody?: string }).rawBody ?? '';
      // An unknown key and a wrong signature look the same to the caller.
      if (!key || !signatureMatches(deps.secretBox.decrypt(key.privateKeyCiphertext), header, rawBody)) {
        throw unauthenticated('the signature does not match', 'invalid_signature');
      }
      await em.nativeDelete(UsedNonce, { expiresAt: { $lt: new Date() } });
      try {
        await em.insert(UsedNonce, { publicKey: header.publicKey, nonce: header.nonce, expiresAt: new Date(Date.now() + NONCE_RETENTION_MS) });
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw unauthenticated('this nonce was already used', 'nonce_reused');
        throw err;
      }
      res.status(201).json(await issueAccessToken(deps.tokenSigningKey, header.publicKey, deps.tokenTtlSeconds));
    },
  });
}

function signatureMatches(privateKey: string, header: ReturnType<typeof parseHmacHeader> & object, body: string): boolean {
  const expected = Buffer.from(hmacSignature(privateKey, header.publicKey, header.nonce, header.epochSeconds, body), 'base64');
  const given = Buffer.from(header.signature, 'base64');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
