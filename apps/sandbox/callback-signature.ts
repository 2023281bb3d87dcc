import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `sandbox-signature` header on the provider's callbacks: `t=<unix seconds>,v1=<hex>`, where
 * v1 is HMAC-SHA256 keyed with the merchant's API key over "<t>.<exact body bytes>". The timestamp
 * is signed too, so a captured callback cannot be replayed once it is older than the tolerance.
 * The provider signs; whoever receives callbacks verifies with the same code.
 */
export const SANDBOX_SIGNATURE_HEADER = 'sandbox-signature';

export function signSandboxCallback(apiKey: string, body: string | Uint8Array, nowSeconds = unixSeconds()): string {
  return `t=${nowSeconds},v1=${hmacHex(apiKey, nowSeconds, body)}`;
}

export function verifySandboxCallback(
  apiKey: string,
  body: string | Uint8Array,
  header: string | undefined,
  { toleranceSeconds = 300, nowSeconds = unixSeconds() }: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  // A real header is about 80 characters; anything far longer is not worth parsing.
  if (!header || header.length > 1000) return false;
  const parts = header.split(',').map((part) => part.trim().split('='));
  const timestamp = parts.find(([name]) => name === 't')?.[1];
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  const t = Number(timestamp);
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(hmacHex(apiKey, t, body), 'hex');
  // A sender rotating keys may send several v1 entries; one match is enough.
  return parts.some(
    ([name, value]) =>
      name === 'v1' &&
      value !== undefined &&
      /^[0-9a-f]{64}$/.test(value) &&
      timingSafeEqual(Buffer.from(value, 'hex'), expected),
  );
}

function hmacHex(apiKey: string, t: number, body: string | Uint8Array): string {
  return createHmac('sha256', Buffer.from(apiKey, 'utf8')).update(`${t}.`).update(body).digest('hex');
}

function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
