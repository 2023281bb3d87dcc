import { BlockList, isIP } from 'node:net';

/**
 * Where the platform may send requests a tenant configured (its provider, its webhooks): https to a
 * public address; plain http only to loopback, and only when local development allows it. Private,
 * link-local and metadata addresses are refused, so a tenant cannot aim our requests at our own
 * network (SSRF). Host names are checked again once resolved, where the request is made.
 */
export interface OutboundUrlPolicy {
  allowLoopbackHttp: boolean;
}

const PRIVATE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['::ffff:0:0', 96], // IPv4-mapped: judged by the IPv4 address instead
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv6');
}
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export type AddressVerdict = 'public' | 'loopback' | 'private';

/** What kind of address an IP literal is. */
export function classifyAddress(address: string): AddressVerdict {
  const family = isIP(address);
  if (family === 0) return 'private';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const mapped = type === 'ipv6' ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined;
  if (mapped) return classifyAddress(mapped);
  if (LOOPBACK.check(address, type)) return 'loopback';
  return PRIVATE.check(address, type) ? 'private' : 'public';
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
  const verdict = isIP(host) ? classifyAddress(host) : host === 'localhost' || host.endsWith('.localhost') ? 'loopback' : 'public';
  if (verdict === 'private') return 'points at a private, link-local or metadata address';
  if (verdict === 'loopback') {
    if (!policy.allowLoopbackHttp) return 'points at loopback, which only local development allows';
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? undefined : 'must be http or https';
  }
  return parsed.protocol === 'https:' ? undefined : 'must be https';
}
