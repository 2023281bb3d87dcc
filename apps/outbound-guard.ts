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

const NOT_PUBLIC = 'does not resolve to a public address';
/** What a resolver answers for a name it has no address for (a timeout, or no name server, is told as it is). */
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA', 'ESERVFAIL']);

/** An address no outbound call may reach: private, link-local or metadata, or loopback outside local development. */
function unreachable({ address }: LookupAddress, policy: OutboundUrlPolicy): boolean {
  const verdict = classifyAddress(address);
  return verdict === 'private' || (verdict === 'loopback' && !policy.allowLoopbackHttp);
}

/**
 * A DNS lookup for got (`dnsLookup`) that refuses private, link-local and metadata addresses, and
 * loopback unless local development allows it. Checking the address the socket will actually use,
 * at connect time, closes the gap a check at configuration time leaves (DNS can change).
 */
export function guardedLookup(policy: OutboundUrlPolicy, resolveAll = lookupAll) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    // The error reaches the tenant's attempt log: a name of ours and a name that does not resolve are
    // told alike, without the address, so a tenant pointing its DNS at our names cannot map them.
    const notPublic = (): NodeJS.ErrnoException =>
      Object.assign(new Error(`${hostname} ${NOT_PUBLIC}`), { code: 'EADDRNOTALLOWED' });
    resolveAll(hostname, options).then(
      (addresses) => {
        if (addresses.some((address) => unreachable(address, policy))) return callback(notPublic(), []);
        if (options.all) return callback(null, addresses);
        callback(null, addresses[0].address, addresses[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(NO_SUCH_NAME.has(err.code ?? '') ? notPublic() : err, []),
    );
  };
}

/**
 * Why a URL may not be called once its host is resolved (a private or metadata address behind a
 * public-looking name), or undefined. For checks when a URL is configured; connections are checked
 * again by guardedLookup, since DNS can change. One answer for a name that resolves to an address of
 * ours and one that does not resolve, without the address: a tenant cannot map our network with it.
 */
export async function resolvedUrlProblem(url: string, policy: OutboundUrlPolicy): Promise<string | undefined> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  let addresses: LookupAddress[];
  try {
    addresses = await lookupAll(host);
  } catch {
    return `its host ${NOT_PUBLIC}`;
  }
  return addresses.some((address) => unreachable(address, policy)) ? `its host ${NOT_PUBLIC}` : undefined;
}
