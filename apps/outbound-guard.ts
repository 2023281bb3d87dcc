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
        const error: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${refused.address}, a private or loopback address`);
        error.code = 'EADDRNOTALLOWED';
        return callback(error, []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
