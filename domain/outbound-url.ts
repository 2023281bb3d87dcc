import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where the platform may send requests a tenant configured (its provider, its webhooks): https to a
 * public address; plain http only to loopback, and only when local development allows it. Private,
 * link-local and metadata addresses are refused, so a tenant cannot aim our requests at our own
 * network (SSRF). Host names are checked again once resolved, where the request is made.
 */
export interface OutboundUrlPolicy {
  allowLoopbackHttp: boolean;
}

export type AddressVerdict = 'public' | 'loopback' | 'private';

const GLOBAL_UNICAST_V6 = ipaddr.parse('2000::');

/**
 * What kind of address an IP literal is. Public means global unicast and nothing else: private,
 * shared (CGNAT), link-local and metadata, reserved, multicast, and every IPv6 form that carries or
 * translates to an IPv4 address (mapped in any spelling, NAT64, 6to4, Teredo) are refused, by
 * ipaddr.js's table of special ranges rather than a list of our own.
 */
export function classifyAddress(address: string): AddressVerdict {
  if (isIP(address) === 0) return 'private';
  let parsed = ipaddr.parse(address);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) parsed = parsed.toIPv4Address();
  const range = parsed.range();
  if (range === 'loopback') return 'loopback';
  if (range !== 'unicast') return 'private';
  if (parsed instanceof ipaddr.IPv6 && !parsed.match(GLOBAL_UNICAST_V6, 3)) return 'private';
  return 'public';
}

/** Why `url` may not be called, or undefined when it may (as far as can be told before resolving its host). */
export function outboundUrlProblem(url: string, policy: OutboundUrlPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.username || parsed.password) return 'must not carry credentials';
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const verdict = isIP(host)
    ? classifyAddress(host)
    : host === 'localhost' || host.endsWith('.localhost')
      ? 'loopback'
      : 'public';
  if (verdict === 'private') return 'points at a private, link-local or metadata address';
  if (verdict === 'loopback') {
    if (!policy.allowLoopbackHttp) return 'points at loopback, which only local development allows';
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? undefined : 'must be http or https';
  }
  return parsed.protocol === 'https:' ? undefined : 'must be https';
}

/**
 * A URL we call (a webhook endpoint, a tenant's own provider) as the audit log keeps it: its origin,
 * and a digest of the whole URL to match a known one against. Its path, query or credentials may
 * hold a token for its receiver (`/services/T…/B…/<secret>`), and an audit entry outlives what it
 * names and is read by others.
 */
export function auditedUrl(url: string): { origin: string; sha256: string } {
  return { origin: new URL(url).origin, sha256: createHash('sha256').update(url).digest('hex') };
}
