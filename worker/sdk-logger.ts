import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';

/** The tenant-hosted calls' worker runs activities only, by design: the SDK warns of it at every start. */
const EXPECTED_WARNING = 'No workflows registered, not polling for workflow tasks';

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/**
 * Sends the Temporal SDK's own log (its workers, and the workflows' and activities' loggers) through
 * the process's pino logger, so that the same error serializer and redaction apply to it. Without it
 * the SDK prints an activity's failure with the whole error it threw, and an HTTP client's error
 * holds the request it sent: the provider's API key among its headers. Call once, before any worker
 * or connection is made.
 *
 * `metricsAddress` (`127.0.0.1:port`): the SDK serves its own metrics there (schedule-to-start
 * latency, task slots, cache size), for the process's `/metrics` to add to ours.
 */
export function installSdkLogger(
  logger: Logger,
  level: LogLevel,
  coreLevel: LogLevel = 'WARN',
  metricsAddress?: string,
): void {
  Runtime.install({
    logger: new DefaultLogger(level, ({ level: entryLevel, message, meta }) => {
      if (message === EXPECTED_WARNING) return;
      const { error, ...rest } = meta ?? {};
      logger[PINO_LEVEL[entryLevel]]({ ...rest, ...(error === undefined ? {} : { err: error }) }, message);
    }),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: coreLevel }), forward: {} },
      ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {}),
    },
  });
}
