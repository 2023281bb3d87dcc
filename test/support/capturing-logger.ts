import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { LOG_SERIALIZERS, maskingDestination, REDACTED_PATHS } from '../../logger.js';

/**
 * A logger built as production builds its own (logger.ts: serializers, redaction, card numbers
 * masked) whose lines a test can read: each line is kept in `lines`, then handed to `echo` (to show
 * it, or not).
 */
export function capturingLogger(
  name: string,
  level: string,
  echo: (line: string) => void = () => undefined,
): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const capture = new Writable({
    write(chunk, _encoding, done) {
      const line = String(chunk);
      lines.push(line);
      echo(line);
      done();
    },
  });
  const logger = pino(
    { name, level, serializers: LOG_SERIALIZERS, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    maskingDestination(capture),
  );
  return { logger, lines };
}
