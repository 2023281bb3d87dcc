import { pino, type Logger } from 'pino';

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

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
}
