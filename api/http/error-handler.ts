import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { dependencyOutage, type Dependency } from './dependency-outage.js';
import { Refusal, type RefusalKind } from '../../domain/refusal.js';
import { ApiError } from './problem.js';
import { describeThrown } from '../../logger.js';

/** Long enough for a restarting database or Temporal server, short enough not to lose the caller. */
const OUTAGE_RETRY_AFTER_SECONDS = 5;
const OUTAGE_ANSWERS: Record<Dependency, { code: string; detail: string }> = {
  database: { code: 'database_unavailable', detail: 'the database cannot be reached just now' },
  temporal: { code: 'temporal_unavailable', detail: 'the workflow service cannot be reached just now' },
  network: { code: 'dependency_unavailable', detail: 'a service this request needs cannot be reached just now' },
};

/** How each kind of refusal a service throws is answered. */
const STATUS_OF_REFUSAL: Record<RefusalKind, number> = {
  not_found: 404,
  conflict: 409,
  invalid: 400,
  unavailable: 503,
};

function sendProblem(res: Parameters<RequestHandler>[1], error: ApiError): void {
  res
    .status(error.status)
    .set(error.headers)
    .type('application/problem+json')
    .send(JSON.stringify(error.toProblem(res.locals.requestId)));
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'route_not_found', `${req.method} ${req.path} is not a route of this API`));
};

/**
 * The one place errors become responses: every error body has the same problem+json shape, and
 * every refusal a service throws gets its status here.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const outage = err instanceof ApiError || err instanceof Refusal ? undefined : dependencyOutage(err);
    if (outage) {
      // Expected while a dependency restarts: one line, no stack, and no message (a failed query's
      // message can carry its bound values).
      const failure = err as Error & { code?: unknown };
      (req.log ?? logger).warn(
        { dependency: outage, error: failure.name, code: failure.code },
        'request failed: dependency unavailable',
      );
      const { code, detail } = OUTAGE_ANSWERS[outage];
      const retryAfter = String(OUTAGE_RETRY_AFTER_SECONDS);
      if (res.headersSent) return;
      // The request's own line (pino-http) names the outage, not a made-up "failed with status code 503".
      res.locals.outage = outage;
      sendProblem(
        res,
        new ApiError(503, code, `${detail}; retry after ${retryAfter} s`, undefined, { 'retry-after': retryAfter }),
      );
      return;
    }
    const apiError = toApiError(err);
    if (err instanceof UniqueConstraintViolationException) {
      // A race the database settled is expected now and then; a constraint broken every time is a bug.
      // Its constraint is named, not its message (which can carry the values).
      const { constraint } = err as { constraint?: unknown };
      (req.log ?? logger).warn({ constraint }, 'request refused: a unique constraint held against a concurrent write');
    }
    if (apiError.status === 503 && (err instanceof ApiError || err instanceof Refusal)) {
      // A 503 a route or service chose (busy, unverifiable or not running for now) is an answer to
      // retry, not a failure: the route logs what it knows, and the request's own line names the
      // answer, at warn. Any other 5xx is logged whole.
      res.locals.unavailableAnswer = apiError.code;
    } else if (apiError.status >= 500) {
      (req.log ?? logger).error({ err }, 'request failed');
      // The request's own line (pino-http) names this error, not "failed with status code 500".
      res.err = err instanceof Error ? err : new Error(`a non-Error was thrown: ${describeThrown(err)}`);
    }
    if (res.headersSent) return;
    sendProblem(res, apiError);
  };
}

/** The dependency whose outage a request was answered 503 for, if it was. */
export function outageOf(res: ServerResponse): Dependency | undefined {
  return (res as Partial<Response>).locals?.outage as Dependency | undefined;
}

/** The code of a 503 a route or service chose to answer (exports busy, a callback unverifiable for now), if it was one. */
export function unavailableAnswerOf(res: ServerResponse): string | undefined {
  return (res as Partial<Response>).locals?.unavailableAnswer as string | undefined;
}

/** What an error answers as: its status and problem, as the API sends them (the batch routes put it in each result). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Refusal) {
    const retry: Record<string, string> =
      err.kind === 'unavailable' ? { 'retry-after': String(OUTAGE_RETRY_AFTER_SECONDS) } : {};
    return new ApiError(STATUS_OF_REFUSAL[err.kind], err.code, err.message, err.errors, retry);
  }
  const bodyParserType = (err as { type?: string }).type;
  if (bodyParserType === 'entity.parse.failed')
    return new ApiError(400, 'malformed_json', 'the request body is not valid JSON');
  if (bodyParserType === 'entity.too.large')
    return new ApiError(413, 'payload_too_large', 'the request body exceeds the size limit');
  if (bodyParserType === 'encoding.unsupported' || bodyParserType === 'charset.unsupported') {
    return new ApiError(415, 'unsupported_encoding', 'the request body encoding is not supported');
  }
  // A check-then-write that another request won between the two (two installs of one app, two
  // defaults of one kind): the database kept one, and this one changed nothing.
  if (err instanceof UniqueConstraintViolationException) {
    return new ApiError(
      409,
      'concurrent_change',
      'a request made at the same moment changed the same thing first; read it again, and retry if still needed',
    );
  }
  return new ApiError(500, 'internal_error', 'an unexpected error occurred; it has been logged');
}
