import { createHash, createHmac } from 'node:crypto';

/**
 * The Imburse HMAC scheme (DESIGN.md section 4):
 *   bodyHash  = base64(SHA-256(body)), the empty string when there is no body
 *   signature = base64(HMAC-SHA256(key = base64decode(privateKey), "{publicKey}:{nonce}:{epochSeconds}:{bodyHash}"))
 *   header    = "Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}"
 * Pure computation, shared by the server's check and the client helper.
 */
export function hmacSignature(privateKey: string, publicKey: string, nonce: string, epochSeconds: number, body: string): string {
  const bodyHash = body.length > 0 ? createHash('sha256').update(body, 'utf8').digest('base64') : '';
  return createHmac('sha256', Buffer.from(privateKey, 'base64'))
    .update(`${publicKey}:${nonce}:${epochSeconds}:${bodyHash}`, 'utf8')
    .digest('base64');
}

export function hmacAuthorizationHeader(privateKey: string, publicKey: string, nonce: string, epochSeconds: number, body: string): string {
  return `Hmac ${publicKey}:${nonce}:${epochSeconds}:${hmacSignature(privateKey, publicKey, nonce, epochSeconds, body)}`;
}

export interface ParsedHmacHeader {
  publicKey: string;
  nonce: string;
  epochSeconds: number;
  signature: string;
}

export function parseHmacHeader(header: string | undefined): ParsedHmacHeader | undefined {
  const match = /^Hmac ([^:\s]+):([^:\s]+):(\d{1,12}):([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!match) return undefined;
  return { publicKey: match[1], nonce: match[2], epochSeconds: Number(match[3]), signature: match[4] };
}
