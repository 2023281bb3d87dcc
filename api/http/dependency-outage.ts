import { isGrpcServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { status as GrpcStatus } from '@grpc/grpc-js';

/** `network`: a socket refused or reset, whose far end the error does not name. */
export type Dependency = 'database' | 'temporal' | 'network';

/** PostgreSQL's SQLSTATEs for a server going away, starting, stopping or full (class 08: connection). */
const DATABASE_DOWN_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const GRPC_DOWN = new Set<number>([
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.RESOURCE_EXHAUSTED,
]);
const DATABASE_DOWN_MESSAGES = [
  'Connection terminated',
  'Timeout acquiring a connection',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
];

/**
 * Which dependency a request failed on because it is down or unreachable, if that is why: such a
 * failure is the caller's to retry (503 with Retry-After), not a fault of the API (500). Looks
 * through the error's causes, since the ORM and the Temporal client wrap what the wire said.
 */
export function dependencyOutage(err: unknown): Dependency | undefined {
  let network = false;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return 'temporal';
    if (isGrpcServiceError(e)) return GRPC_DOWN.has(e.code) ? 'temporal' : undefined;
    const { code, name } = e as Error & { code?: unknown };
    if (typeof code === 'string') {
      if (code.startsWith('08') || DATABASE_DOWN_STATES.has(code)) return 'database';
      if (NETWORK_CODES.has(code)) network = true;
    }
    if (name === 'KnexTimeoutError' || DATABASE_DOWN_MESSAGES.some((m) => e.message.includes(m))) return 'database';
  }
  return network ? 'network' : undefined;
}
