import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

const ACCEPTABLE_ID = /^[A-Za-z0-9\-_.:]{1,100}$/;

/** Accepts a caller's X-Request-Id (so traces join up) or makes one, and echoes it back. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.header('x-request-id');
  const id = given && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  res.locals.requestId = id;
  res.setHeader('x-request-id', id);
  next();
};
