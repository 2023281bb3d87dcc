import { hkdfSync } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

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

/** Its own key, derived from the master key: a link cannot stand in for an access token, nor one for a link. */
export function paymentLinkKey(masterKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'payment-link', 32));
}

export async function issuePaymentLink(key: Uint8Array, claims: PaymentLinkClaims, expiresAt: Date): Promise<string> {
  return new SignJWT({ tid: claims.tenantId, ord: claims.orderRef, ins: claims.instructionRef })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.instructionId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(key);
}

export type LinkCheck = { valid: true; claims: PaymentLinkClaims } | { valid: false; reason: 'expired' | 'invalid' };

export async function verifyPaymentLink(key: Uint8Array, token: string): Promise<LinkCheck> {
  if (token.length > 1024) return { valid: false, reason: 'invalid' };
  try {
    const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
    const { tid, ord, ins, sub } = payload;
    if (typeof tid !== 'string' || typeof ord !== 'string' || typeof ins !== 'string' || typeof sub !== 'string')
      return { valid: false, reason: 'invalid' };
    return { valid: true, claims: { tenantId: tid, orderRef: ord, instructionRef: ins, instructionId: sub } };
  } catch (err) {
    return { valid: false, reason: (err as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'expired' : 'invalid' };
  }
}
