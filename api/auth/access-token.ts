import { hkdfSync, randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

const ISSUER = 'payment-scheduler';
const AUDIENCE = 'payment-scheduler-api';

/** A short-lived JWT naming the key it was issued to; the key is looked up again on every call. */
export async function issueAccessToken(signingKey: Uint8Array, publicKey: string, ttlSeconds: number) {
  const expiresAtSeconds = Math.floor(Date.now() / 1000) + ttlSeconds;
  const accessToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(publicKey)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(expiresAtSeconds)
    .sign(signingKey);
  return { accessToken, expires: expiresAtSeconds * 1000 };
}

/** The public key a valid token was issued to, or undefined for a bad, expired or foreign token. */
export async function verifyAccessToken(signingKey: Uint8Array, token: string): Promise<string | undefined> {
  try {
    const { payload } = await jwtVerify(token, signingKey, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
    });
    return payload.sub;
  } catch {
    return undefined;
  }
}

/**
 * The token signing key, derived from the current master key: after a rotation, tokens signed
 * under the old key fail verification (closed), and their holders sign in again.
 */
export function tokenSigningKey(masterKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'access-token', 32));
}
