import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { csrfKey, csrfTokenValid, issueCsrfToken } from '../../orders/pay-page/csrf.js';

const key = csrfKey(randomBytes(32).toString('base64'));

/** A request as the page sees it: its cookies, and whether it came over TLS to this process. */
function request(cookie: string | undefined, secure = false): Request {
  return { header: (name: string) => (name === 'cookie' ? cookie : undefined), secure } as unknown as Request;
}

/** A response that keeps the cookies set on it. */
function response(): Response & { cookies: string[] } {
  const cookies: string[] = [];
  return { cookies, append: (name: string, value: string) => name === 'set-cookie' && cookies.push(value) } as never;
}

/** The page's form token for a link, and the cookie it set (the browser's cookie header from then on). */
function pageOpened(publicHttps: boolean) {
  const res = response();
  const token = issueCsrfToken(key, request(undefined), res, 'link', publicHttps);
  const [setCookie] = res.cookies;
  return { token, setCookie, cookie: setCookie.split(';')[0] };
}

describe('the payment page’s CSRF cookie', () => {
  it('is __Host- over HTTPS: Secure, Path=/, no Domain, so no sibling subdomain or plain-HTTP answer can plant one', () => {
    const { token, setCookie, cookie } = pageOpened(true);
    expect(setCookie).toMatch(/^__Host-pay_csrf=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    expect(csrfTokenValid(key, request(cookie), 'link', token, true)).toBe(true);
    // The same secret under the name a planted cookie can have is not read.
    const planted = cookie.replace('__Host-pay_csrf', 'pay_csrf');
    expect(csrfTokenValid(key, request(planted), 'link', token, true)).toBe(false);
  });

  it('is kept to the page’s path over plain HTTP, where no __Host- cookie can be set', () => {
    const { token, setCookie, cookie } = pageOpened(false);
    expect(setCookie).toMatch(/^pay_csrf=[A-Za-z0-9_-]{43}; Path=\/pay; HttpOnly; SameSite=Lax$/);
    expect(csrfTokenValid(key, request(cookie), 'link', token, false)).toBe(true);
    expect(csrfTokenValid(key, request(cookie), 'another link', token, false)).toBe(false);
  });

  it('is __Host- when the request itself came over TLS, whatever the public address says', () => {
    const res = response();
    issueCsrfToken(key, request(undefined, true), res, 'link', false);
    expect(res.cookies[0]).toMatch(/^__Host-pay_csrf=/);
  });
});
