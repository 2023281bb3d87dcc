import { DriverException } from '@mikro-orm/core';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { maskPaymentData } from './domain/payment-data.js';

/**
 * Paths that may carry secrets anywhere in a log line. pino replaces them before the line is
 * written, so a secret never reaches a log even when a whole request or config is logged.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  // A provider's callback signature opens nothing, but is not ours to keep.
  'req.headers["webhook-signature"]',
  'req.headers["sandbox-signature"]',
  '*.privateKey',
  '*.secret',
  '*.signingSecret',
  '*.password',
  '*.accessToken',
  '*.apiKey',
  '*.token',
  '*.masterKey',
  'privateKey',
  'secret',
  'signingSecret',
  'password',
  'accessToken',
  'apiKey',
  'token',
  'masterKey',
  'databaseUrl',
];

/**
 * The only own properties of an error copied into a log (when scalar): what names the failure, never
 * what the failing call carried (an HTTP client's error holds its URL and request, whose query or
 * headers can carry a credential).
 */
const LOGGED_PROPERTIES = new Set([
  'code',
  'errno',
  'syscall',
  'address',
  'port',
  'status',
  'statusCode',
  'kind',
  'keyId',
  'activityType',
  'activityId',
  'retryState',
  'timeoutType',
  'nonRetryable',
]);
const MAX_CAUSE_DEPTH = 5;

/**
 * Errors as logged. A database error's message, detail and query carry the statement's bound
 * values (an amount, a name, a ciphertext), so only what names the failure is kept. Of any other
 * error only its name, message, stack, the properties above and causes are kept.
 */
export function serializeError(err: unknown, depth = 0): Record<string, unknown> {
  // pino-http hands a custom serializer pino's own serialization of the error, with the error as `raw`.
  const raw = (err as { raw?: unknown } | null)?.raw;
  if (!(err instanceof Error) && raw !== undefined) return serializeError(raw, depth);
  // MikroORM's wrapper, or pg's own DatabaseError where a raw query failed.
  if (err instanceof DriverException || (err instanceof Error && 'severity' in err && 'routine' in err)) {
    const { code, sqlState, routine, table, column, constraint } = err as Error & Record<string, string | undefined>;
    const state = sqlState ?? code;
    return {
      type: err.name,
      code: state,
      routine,
      table,
      column,
      constraint,
      message: `database error ${state ?? ''}`.trim(),
    };
  }
  if (!(err instanceof Error)) return { type: typeof err, message: describeThrown(err) };
  const logged: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  for (const [name, value] of Object.entries(err)) {
    if (!LOGGED_PROPERTIES.has(name)) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') logged[name] = value;
  }
  if (err.cause !== undefined && depth < MAX_CAUSE_DEPTH) logged.cause = serializeError(err.cause, depth + 1);
  return logged;
}

/** What was thrown, when it was no Error: its own message if it has one (a thrown `{ message }`). */
export function describeThrown(thrown: unknown): string {
  const message = (thrown as { message?: unknown } | null)?.message;
  if (typeof message === 'string') return message;
  try {
    return String(thrown);
  } catch {
    return Object.prototype.toString.call(thrown); // an object with no prototype has no toString
  }
}

export const LOG_SERIALIZERS = {
  err: (err: unknown) => serializeError(err),
  error: (err: unknown) => serializeError(err),
};

/**
 * Where log lines go, with anything that looks like a card or bank account number masked on the way:
 * whatever a line holds (a URL someone put one in, a refused request's message), none is written.
 */
export function maskingDestination(out: { write(line: string): unknown }): { write(line: string): void } {
  return {
    write(line: string) {
      out.write(maskPaymentData(line));
    },
  };
}

/** JSON lines for a log collector, or one readable line per entry for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

/**
 * The process's logger. `format` defaults to pretty on a terminal and JSON anywhere else (a file,
 * a pipe, a container's log driver). Pretty lines leave out the request and response objects a
 * JSON line carries: the message already says method, route and status.
 */
export function createLogger(
  name: string,
  level: string,
  format: LogFormat = process.stdout.isTTY ? 'pretty' : 'json',
): Logger {
  const out =
    format === 'pretty'
      ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,req,res', singleLine: true })
      : process.stdout;
  return pino(
    { name, level, serializers: LOG_SERIALIZERS, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    maskingDestination(out),
  );
}
