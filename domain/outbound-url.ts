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
  ['64:ff9b::', 96], // NAT64: reaches whatever IPv4 address it embeds
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
  if (family === 6) {
    // IPv4-mapped IPv6 is judged by its IPv4 address, in whichever spelling it comes (URL parsing
    // turns ::ffff:10.0.0.1 into ::ffff:a00:1). No ::ffff:0:0/96 rule in PRIVATE: BlockList
    // matches every IPv4 address against it.
    const mapped = mappedIPv4(address);
    if (mapped) return classifyAddress(mapped);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (LOOPBACK.check(address, type)) return 'loopback';
  return PRIVATE.check(address, type) ? 'private' : 'public';
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), if it is one. */
function mappedIPv4(address: string): string | undefined {
  const groups = ipv6Groups(address);
  if (!groups || groups.slice(0, 5).some((g) => g !== 0) || groups[5] !== 0xffff) return undefined;
  return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
}

/** The eight 16-bit groups of a valid IPv6 literal. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 ? groups : undefined;
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
