import { DriverException } from '@mikro-orm/core';
import { pino, stdSerializers, type Logger } from 'pino';

/**
 * Paths that may carry secrets anywhere in a log line. pino replaces them before the line is
 * written, so a secret never reaches a log even when a whole request or config is logged.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  '*.privateKey',
  '*.secret',
  '*.password',
  '*.accessToken',
  'privateKey',
  'secret',
  'password',
  'accessToken',
  'databaseUrl',
];

/**
 * Errors as logged. A database error's message, detail and query carry the statement's bound
 * values (an amount, a name, a ciphertext), so only what names the failure is kept.
 */
export function serializeError(err: unknown): Record<string, unknown> {
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
  return stdSerializers.err(err as Error);
}

export const LOG_SERIALIZERS = { err: serializeError };

export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, serializers: LOG_SERIALIZERS, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
}
