import { hkdfSync } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { MasterKeys } from '../db/secret-box.js';

const ISSUER = 'payment-scheduler';
const AUDIENCE = 'payment-page';

/** What a payment link names: one instruction of one tenant's order, and nothing else. */
export interface PaymentLinkClaims {
  tenantId: string;
  orderRef: string;
  instructionRef: string;
  /** The instruction's row id: a link outlives nothing (an instruction re-created under the same ref is another). */
  instructionId: string;
}

/**
 * The keys links are signed with, each derived from a master key for this use alone (a link cannot
 * stand in for an access token, nor one for a link): new links are signed with the current one, and
 * links signed before a rotation still open with the previous ones, until those are dropped.
 */
export interface PaymentLinkKeys {
  current: Uint8Array;
  previous: Uint8Array[];
}

export function paymentLinkKeys(masterKeys: MasterKeys): PaymentLinkKeys {
  const derive = (masterKey: string) =>
    new Uint8Array(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'payment-link', 32));
  return { current: derive(masterKeys.current), previous: (masterKeys.previous ?? []).map(derive) };
}

export async function issuePaymentLink(
  keys: PaymentLinkKeys,
  claims: PaymentLinkClaims,
  expiresAt: Date,
  issuedAt = new Date(),
): Promise<string> {
  const ims = issuedAt.getTime();
  return new SignJWT({ tid: claims.tenantId, ord: claims.orderRef, ins: claims.instructionRef, ims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.instructionId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(keys.current);
}

export type LinkCheck =
  { valid: true; claims: PaymentLinkClaims; issuedAtMs: number } | { valid: false; reason: 'expired' | 'invalid' };

export async function verifyPaymentLink(keys: PaymentLinkKeys, token: string): Promise<LinkCheck> {
  if (token.length > 1024) return { valid: false, reason: 'invalid' };
  for (const key of [keys.current, ...keys.previous]) {
    try {
      const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      const { tid, ord, ins, sub, ims, iat } = payload;
      if (typeof tid !== 'string' || typeof ord !== 'string' || typeof ins !== 'string' || typeof sub !== 'string') {
        return { valid: false, reason: 'invalid' };
      }
      // Links from before `ims` count from the start of their second: a revocation in that second ends them.
      const issuedAtMs = typeof ims === 'number' ? ims : (iat ?? 0) * 1000;
      return {
        valid: true,
        claims: { tenantId: tid, orderRef: ord, instructionRef: ins, instructionId: sub },
        issuedAtMs,
      };
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { valid: false, reason: 'expired' };
      // Signed with another key (an earlier master key, perhaps): try the next.
      if (err instanceof errors.JWSSignatureVerificationFailed) continue;
      return { valid: false, reason: 'invalid' };
    }
  }
  return { valid: false, reason: 'invalid' };
}
