import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError } from './problem.js';

function sendProblem(res: Parameters<RequestHandler>[1], error: ApiError): void {
  res.status(error.status).set(error.headers).type('application/problem+json').send(JSON.stringify(error.toProblem(res.locals.requestId)));
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'route_not_found', `${req.method} ${req.path} is not a route of this API`));
};

/** The one place errors become responses: every error body has the same problem+json shape. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) {
      (req.log ?? logger).error({ err }, 'request failed');
    }
    if (res.headersSent) return;
    sendProblem(res, apiError);
  };
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const bodyParserType = (err as { type?: string }).type;
  if (bodyParserType === 'entity.parse.failed') return new ApiError(400, 'malformed_json', 'the request body is not valid JSON');
  if (bodyParserType === 'entity.too.large') return new ApiError(413, 'payload_too_large', 'the request body exceeds the size limit');
  if (bodyParserType === 'encoding.unsupported' || bodyParserType === 'charset.unsupported') {
    return new ApiError(415, 'unsupported_encoding', 'the request body encoding is not supported');
  }
  return new ApiError(500, 'internal_error', 'an unexpected error occurred; it has been logged');
}
