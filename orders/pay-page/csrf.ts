import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { parse, serialize } from 'cookie';
import type { Request, Response } from 'express';

/**
 * The cookie as the page is reached. Over HTTPS it is `__Host-` (Secure, Path=/, no Domain): a
 * sibling subdomain, or a network attacker over plain HTTP, cannot set one the browser would send
 * here, so cannot plant a secret that expires every open form. Over plain HTTP (a developer's
 * machine) no such cookie can be set; it is kept to the page's path.
 */
function cookieOf(req: Request, publicHttps: boolean): { name: string; path: string; secure: boolean } {
  // Behind a proxy that ends TLS, the request here may be plain HTTP: Secure all the same.
  return publicHttps || req.secure
    ? { name: '__Host-pay_csrf', path: '/', secure: true }
    : { name: 'pay_csrf', path: '/pay', secure: false };
}

/** Its own key, derived from the master key. */
export function csrfKey(masterKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), Buffer.alloc(0), 'payment-page-csrf', 32));
}

function tokenFor(key: Buffer, secret: string, linkToken: string): string {
  return createHmac('sha256', key).update(`${secret}|${linkToken}`).digest('base64url');
}

/**
 * Signed double-submit: a random secret in a SameSite=Lax cookie, and in the form an HMAC of that
 * secret and the link. A form posted from another site carries neither a cookie the browser would
 * send nor a token it could compute. Lax, not Strict: customers arrive from another site (the link in
 * their email, the way back from a provider's form), and a Strict cookie is not sent then, so a new
 * secret would be set and every form already open in their other tabs would expire.
 */
export function issueCsrfToken(
  key: Buffer,
  req: Request,
  res: Response,
  linkToken: string,
  /** Customers reach the page over HTTPS (its public address says so), whatever the request here says. */
  publicHttps: boolean,
): string {
  const cookie = cookieOf(req, publicHttps);
  let secret = parse(req.header('cookie') ?? '')[cookie.name];
  if (!secret || !/^[A-Za-z0-9_-]{43}$/.test(secret)) {
    secret = randomBytes(32).toString('base64url');
    res.append(
      'set-cookie',
      serialize(cookie.name, secret, { httpOnly: true, sameSite: 'lax', secure: cookie.secure, path: cookie.path }),
    );
  }
  return tokenFor(key, secret, linkToken);
}

export function csrfTokenValid(
  key: Buffer,
  req: Request,
  linkToken: string,
  submitted: unknown,
  publicHttps: boolean,
): boolean {
  const secret = parse(req.header('cookie') ?? '')[cookieOf(req, publicHttps).name];
  if (!secret || typeof submitted !== 'string' || submitted.length > 100) return false;
  const expected = Buffer.from(tokenFor(key, secret, linkToken));
  const given = Buffer.from(submitted);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
