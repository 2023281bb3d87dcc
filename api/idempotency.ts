import { createHash, randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/postgresql';
import type { RequestHandler } from 'express';
import { IdempotencyRecord } from '../db/entities/index.js';
import { ApiError } from './problem.js';

const RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Idempotency-Key on POSTs: the first successful answer is stored and replayed for 24 hours to the
 * same caller sending the same key and body. The same key with another body is a 422; a second
 * request while the first still runs is a 409. Failed answers are not stored, so a retry runs again.
 */
export function idempotency(orm: MikroORM, scopeOf: (locals: Record<string, unknown>) => string): RequestHandler {
  return async (req, res, next) => {
    const key = req.header('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (key.length === 0 || key.length > 255) {
      throw new ApiError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–255 characters');
    }
    const scope = scopeOf(res.locals);
    const requestHash = createHash('sha256').update(JSON.stringify([req.method, req.originalUrl, req.body ?? null])).digest('hex');
    const em = orm.em.fork();
    // Expired records of every caller go here too (an indexed delete), so the table does not grow without bound.
    await em.nativeDelete(IdempotencyRecord, { expiresAt: { $lte: new Date() } });

    const record = em.create(IdempotencyRecord, {
      id: randomUUID(),
      scope,
      key,
      method: req.method,
      path: req.originalUrl.slice(0, 500),
      requestHash,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + RETENTION_MS),
    });
    try {
      await em.flush();
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException)) throw err;
      const existing = await orm.em.fork().findOneOrFail(IdempotencyRecord, { scope, key });
      if (existing.requestHash !== requestHash) {
        throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request');
      }
      if (existing.responseStatus == null) {
        throw new ApiError(409, 'idempotency_request_in_progress', 'a request with this Idempotency-Key is still running', undefined, { 'retry-after': '1' });
      }
      res.status(existing.responseStatus).set('idempotent-replayed', 'true').json(existing.responseBody);
      return;
    }

    let settled = false;
    const sendJson = res.json.bind(res);
    // Store before sending, so a client that retries the moment it has the answer gets the replay.
    res.json = (body: unknown) => {
      if (res.statusCode < 200 || res.statusCode >= 300) return sendJson(body);
      settled = true;
      record.responseStatus = res.statusCode;
      record.responseBody = body;
      em.flush().then(
        () => sendJson(body),
        (err) => {
          req.log?.error({ err }, 'could not store idempotent response');
          sendJson(body);
        },
      );
      return res;
    };
    res.on('close', () => {
      if (!settled) void orm.em.fork().nativeDelete(IdempotencyRecord, { id: record.id }).catch(() => undefined);
    });
    next();
  };
}
