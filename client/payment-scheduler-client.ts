import { randomUUID } from 'node:crypto';
import { hmacAuthorizationHeader } from '../domain/hmac-signature.js';

export interface ClientOptions {
  baseUrl: string;
  publicKey: string;
  privateKey: string;
  /** Sent as x-account-id: for account keys. */
  accountId?: string;
  /** Sent as x-tenant-id: for tenant keys. */
  tenantId?: string;
}

// Bodies default to `any`: a caller reads the fields of the route it called, and may name their type instead.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * The Authorization header for POST /v1/identity/hmac: `Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}`.
 * A fresh nonce every call; the body must be the exact bytes sent ('' for none).
 */
export function signHmac(
  publicKey: string,
  privateKey: string,
  body = '',
  nowMs = Date.now(),
  nonce: string = randomUUID(),
): string {
  return hmacAuthorizationHeader(privateKey, publicKey, nonce, Math.floor(nowMs / 1000), body);
}

/**
 * A few lines to call the API as a key: signs in with HMAC, keeps the access token until shortly
 * before it expires, and sends the account or tenant header with every call.
 */
export class PaymentSchedulerClient {
  private token?: { value: string; expires: number };

  constructor(private readonly options: ClientOptions) {}

  /** The key this client signs in with. */
  get credentials(): { publicKey: string; privateKey: string } {
    return { publicKey: this.options.publicKey, privateKey: this.options.privateKey };
  }

  async accessToken(): Promise<string> {
    if (this.token && this.token.expires - 30_000 > Date.now()) return this.token.value;
    const res = await fetch(`${this.options.baseUrl}/v1/identity/hmac`, {
      method: 'POST',
      headers: { authorization: signHmac(this.options.publicKey, this.options.privateKey) },
    });
    const body = (await res.json()) as { accessToken: string; expires: number; detail?: string };
    if (res.status !== 201) throw new Error(`HMAC sign-in failed with ${res.status}: ${body.detail ?? ''}`);
    this.token = { value: body.accessToken, expires: body.expires };
    return body.accessToken;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see ApiResponse
  async request<T = any>(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const res = await this.send(method, path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** The answer as it comes, its body unread: for exports, read as a stream. */
  async send(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    return fetch(`${this.options.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await this.accessToken()}`,
        ...(this.options.accountId ? { 'x-account-id': this.options.accountId } : {}),
        ...(this.options.tenantId ? { 'x-tenant-id': this.options.tenantId } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  }
}
