import { lookup, promises as dns, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import pLimit from 'p-limit';
import { classifyAddress, type OutboundUrlPolicy } from '../domain/outbound-url.js';
import { withinTime } from '../domain/time-limit.js';

/** How long a host name may take to resolve before the call is given up (retried like any unanswered call). */
export const DNS_TIMEOUT_MS = 2_000;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

type LookupFunction = (
  host: string,
  options: LookupOptions & { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** Resolves a host name to every address it has (of the family asked, if any). */
export type ResolveAll = (host: string, options?: LookupOptions) => Promise<LookupAddress[]>;

function timedOut(host: string, timeoutMs: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`${host} did not resolve within ${timeoutMs} ms`), { code: 'ETIMEOUT' });
}

/**
 * Names only the system's resolver answers (the hosts file, a single-label service name): loopback
 * and local names, which no public URL has. Every other name is asked of the name servers directly.
 */
export function isLocalName(host: string): boolean {
  // An IPv6 literal has no dot either: it is an address, not a name.
  return isIP(host) === 0 && (!host.includes('.') || host.endsWith('.localhost'));
}

/**
 * Resolves host names through the system's resolver (getaddrinfo) within `timeoutMs`, at most
 * `concurrency` at once: those look-ups run on libuv's thread pool, four threads that file and crypto
 * work share, and cannot be cancelled. A look-up whose caller gave up while it was queued is not run.
 * Only local names (`isLocalName`) go this way, and only where local development allows loopback.
 */
export function boundedResolver(
  lookupFn: LookupFunction = lookup,
  timeoutMs = DNS_TIMEOUT_MS,
  concurrency = 2,
): ResolveAll {
  const limit = pLimit(concurrency);
  return (host, options = {}) => {
    let gaveUp = false;
    const resolving = limit(() =>
      gaveUp
        ? Promise.reject(timedOut(host, timeoutMs))
        : new Promise<LookupAddress[]>((resolve, reject) =>
            lookupFn(host, { ...options, all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
          ),
    );
    return withinTime(resolving, timeoutMs, () => {
      gaveUp = true;
      return timedOut(host, timeoutMs);
    });
  };
}

/**
 * Resolves host names by asking the name servers (c-ares: no thread pool, nothing shared between
 * look-ups), within `timeoutMs`, after which its queries are cancelled. So one tenant's name server
 * that never answers holds nothing another tenant's look-up needs. `servers`: for tests.
 */
export function networkResolver({
  timeoutMs = DNS_TIMEOUT_MS,
  servers,
}: { timeoutMs?: number; servers?: string[] } = {}): ResolveAll {
  return async (host, options = {}) => {
    const resolver = new dns.Resolver({ timeout: Math.ceil(timeoutMs / 2), tries: 2 });
    if (servers) resolver.setServers(servers);
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    // What has come so far: a name server that drops AAAA queries must not cost the A answer it gave.
    const found: LookupAddress[] = [];
    const ask = (version: 4 | 6, asking: Promise<string[]>) =>
      asking.then((all) => found.push(...all.map((address) => ({ address, family: version }))));
    const asked: Promise<unknown>[] = [];
    if (family !== 6) asked.push(ask(4, resolver.resolve4(host)));
    if (family !== 4) asked.push(ask(6, resolver.resolve6(host)));
    const inOrder = () => [...found].sort((a, b) => a.family - b.family);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timed out'>((resolve) => {
      timer = setTimeout(() => {
        resolver.cancel();
        resolve('timed out');
      }, timeoutMs);
    });
    try {
      const answers = await Promise.race([Promise.allSettled(asked), timeout]);
      if (found.length > 0) return inOrder();
      if (answers === 'timed out') throw timedOut(host, timeoutMs);
      throw (answers.find((answer) => answer.status === 'rejected') as PromiseRejectedResult).reason;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** An IP literal is its own address; a local name goes to the system's resolver, any other to the name servers. */
export function outboundResolver(
  local: ResolveAll = boundedResolver(),
  network: ResolveAll = networkResolver(),
): ResolveAll {
  return (host, options = {}) => {
    const family = isIP(host);
    if (family !== 0) return Promise.resolve([{ address: host, family }]);
    return isLocalName(host) ? local(host, options) : network(host, options);
  };
}

const lookupAll = outboundResolver();

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
export function guardedLookup(policy: OutboundUrlPolicy, resolveAll: ResolveAll = lookupAll) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    // The error reaches the tenant's attempt log: a name of ours and a name that does not resolve are
    // told alike, without the address, so a tenant pointing its DNS at our names cannot map them.
    const notPublic = (): NodeJS.ErrnoException =>
      Object.assign(new Error(`${hostname} ${NOT_PUBLIC}`), { code: 'EADDRNOTALLOWED' });
    // A local name is no public host: outside local development it is refused without a look-up, so
    // no tenant's name ever takes one of the thread pool's threads.
    if (isLocalName(hostname) && !policy.allowLoopbackHttp) return callback(notPublic(), []);
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
  if (isLocalName(host) && !policy.allowLoopbackHttp) return `its host ${NOT_PUBLIC}`;
  let addresses: LookupAddress[];
  try {
    addresses = await lookupAll(host);
  } catch {
    return `its host ${NOT_PUBLIC}`;
  }
  return addresses.some((address) => unreachable(address, policy)) ? `its host ${NOT_PUBLIC}` : undefined;
}
