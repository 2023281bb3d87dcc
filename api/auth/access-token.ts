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

async function verifiedClaims(
  signingKey: Uint8Array,
  token: string,
): Promise<{ publicKey: string; expiresAtMs: number } | undefined> {
  try {
    const { payload } = await jwtVerify(token, signingKey, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
    });
    if (payload.sub === undefined || payload.exp === undefined) return undefined;
    return { publicKey: payload.sub, expiresAtMs: payload.exp * 1000 };
  } catch {
    return undefined;
  }
}

/** How many verified tokens a process keeps: a client signs in once per token lifetime, so few are live at once. */
const TOKENS_HELD = 10_000;

/**
 * Tokens already verified, until each expires: a client calls many times with one token, and its
 * signature only needs checking once. What a token names is still looked up on every call (a
 * deleted key is cut off at once); only the verification of the token itself is kept.
 */
export class VerifiedTokens {
  private readonly held = new Map<string, { publicKey: string; expiresAtMs: number }>();

  constructor(private readonly signingKey: Uint8Array) {}

  /** The public key a valid token was issued to, or undefined for a bad, expired or foreign token. */
  async publicKeyOf(token: string): Promise<string | undefined> {
    const known = this.held.get(token);
    if (known && known.expiresAtMs > Date.now()) return known.publicKey;
    this.held.delete(token);
    const verified = await verifiedClaims(this.signingKey, token);
    if (!verified) return undefined;
    // The oldest first: a Map keeps its insertion order.
    if (this.held.size >= TOKENS_HELD) this.held.delete(this.held.keys().next().value as string);
    this.held.set(token, verified);
    return verified.publicKey;
  }
}

/**
 * The token signing key, derived from the current master key: after a rotation, tokens signed
 * under the old key fail verification (closed), and their holders sign in again.
 */
export function tokenSigningKey(masterKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'access-token', 32));
}
