import { createHash, createHmac } from 'node:crypto';

/**
 * The Imburse HMAC scheme (ARCHITECTURE.md, "Authentication"):
 *   bodyHash  = base64(SHA-256(body)), the empty string when there is no body
 *   signature = base64(HMAC-SHA256(key = base64decode(privateKey), "{publicKey}:{nonce}:{epochSeconds}:{bodyHash}"))
 *   header    = "Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}"
 * Pure computation, shared by the server's check and the client helper.
 */
export function hmacSignature(
  privateKey: string,
  publicKey: string,
  nonce: string,
  epochSeconds: number,
  body: string,
): string {
  const bodyHash = body.length > 0 ? createHash('sha256').update(body, 'utf8').digest('base64') : '';
  return createHmac('sha256', Buffer.from(privateKey, 'base64'))
    .update(`${publicKey}:${nonce}:${epochSeconds}:${bodyHash}`, 'utf8')
    .digest('base64');
}

export function hmacAuthorizationHeader(
  privateKey: string,
  publicKey: string,
  nonce: string,
  epochSeconds: number,
  body: string,
): string {
  return `Hmac ${publicKey}:${nonce}:${epochSeconds}:${hmacSignature(privateKey, publicKey, nonce, epochSeconds, body)}`;
}

export interface ParsedHmacHeader {
  publicKey: string;
  nonce: string;
  epochSeconds: number;
  signature: string;
}

/**
 * Parts are bounded (public key 64, nonce 128 and signature 128 characters, what the server stores
 * and checks), and so is the whole header before the pattern runs.
 */
const HMAC_HEADER = /^Hmac ([^:\s]{1,64}):([^:\s]{1,128}):(\d{1,12}):([A-Za-z0-9+/=]{1,128})$/;

/** The header's parts, or undefined when it is malformed or any part is too long. */
export function parseHmacHeader(header: string | undefined): ParsedHmacHeader | undefined {
  if (!header || header.length > 400) return undefined;
  const match = HMAC_HEADER.exec(header);
  if (!match) return undefined;
  return { publicKey: match[1], nonce: match[2], epochSeconds: Number(match[3]), signature: match[4] };
}
