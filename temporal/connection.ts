import { Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';

/**
 * The API's connection to Temporal. The SDK retries an unreachable server for about 20 s; a
 * caller is better served by a 503 with Retry-After within a few seconds, so the API tries six
 * times (about 2 s of backing off, enough for a server's brief hiccup). Workers keep the default:
 * they have no caller waiting.
 */
export function connectApiToTemporal(address: string): Promise<Connection> {
  return Connection.connect({
    address,
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 6 }))],
  });
}
