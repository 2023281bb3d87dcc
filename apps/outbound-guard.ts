import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { classifyAddress, type OutboundUrlPolicy } from '../domain/outbound-url.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A DNS lookup for got (`dnsLookup`) that refuses private, link-local and metadata addresses, and
 * loopback unless local development allows it. Checking the address the socket will actually use,
 * at connect time, closes the gap a check at configuration time leaves (DNS can change).
 */
export function guardedLookup(policy: OutboundUrlPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = addresses.find(({ address }) => {
        const verdict = classifyAddress(address);
        return verdict === 'private' || (verdict === 'loopback' && !policy.allowLoopbackHttp);
      });
      if (refused) {
        const error: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to ${refused.address}, a private or loopback address`,
        );
        error.code = 'EADDRNOTALLOWED';
        return callback(error, []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/**
 * Why a URL may not be called once its host is resolved (a private or metadata address behind a
 * public-looking name), or undefined. For checks when a URL is configured; connections are checked
 * again by guardedLookup, since DNS can change.
 */
export async function resolvedUrlProblem(url: string, policy: OutboundUrlPolicy): Promise<string | undefined> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  let addresses: LookupAddress[];
  try {
    addresses = await lookupAll(host);
  } catch {
    return `its host ${host} does not resolve`;
  }
  for (const { address } of addresses) {
    const verdict = classifyAddress(address);
    if (verdict === 'private') return `its host resolves to ${address}, a private, link-local or metadata address`;
    if (verdict === 'loopback' && !policy.allowLoopbackHttp)
      return `its host resolves to ${address}, a loopback address`;
  }
  return undefined;
}

function lookupAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) =>
    lookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );
}
