import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import pLimit from 'p-limit';
import { classifyAddress, type OutboundUrlPolicy } from '../domain/outbound-url.js';

/** How long a host name may take to resolve before the call is given up (retried like any unanswered call). */
export const DNS_TIMEOUT_MS = 2_000;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

type LookupFunction = (
  host: string,
  options: LookupOptions & { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * Resolves host names within `timeoutMs` (a look-up queued meanwhile counts its wait), at most
 * `concurrency` at once: look-ups run on libuv's thread pool, four threads that file and crypto work
 * share, so a tenant's slow name server must never take them all.
 */
export function boundedResolver(lookupFn: LookupFunction = lookup, timeoutMs = DNS_TIMEOUT_MS, concurrency = 2) {
  const limit = pLimit(concurrency);
  return (host: string, options: LookupOptions = {}): Promise<LookupAddress[]> => {
    const resolving = limit(
      () =>
        new Promise<LookupAddress[]>((resolve, reject) =>
          lookupFn(host, { ...options, all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
        ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error: NodeJS.ErrnoException = new Error(`${host} did not resolve within ${timeoutMs} ms`);
        error.code = 'ETIMEOUT';
        reject(error);
      }, timeoutMs);
    });
    return Promise.race([resolving, timeout]).finally(() => clearTimeout(timer));
  };
}

const lookupAll = boundedResolver();

/**
 * A DNS lookup for got (`dnsLookup`) that refuses private, link-local and metadata addresses, and
 * loopback unless local development allows it. Checking the address the socket will actually use,
 * at connect time, closes the gap a check at configuration time leaves (DNS can change).
 */
export function guardedLookup(policy: OutboundUrlPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    lookupAll(hostname, options).then(
      (addresses) => {
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
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    );
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
