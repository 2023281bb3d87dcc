import { createHash, randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';
import { IdempotencyRecord } from '../../db/entities/index.js';
import { transactionally } from '../../db/transactionally.js';
import { sealedContext } from '../../db/sealed-columns.js';
import type { SecretBox } from '../../db/secret-box.js';
import { ApiError } from './problem.js';
import type { Reply } from './reply.js';

const RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * How long a request holds its key past its last renewal (it renews it every third of that while it
 * runs): a retry may take the key over only from a request that died.
 */
const DEFAULT_LEASE_MS = 30_000;

export interface IdempotentRequest {
  /** Who sent the key (tenant or account): keys of different callers never collide. */
  scope: string;
  /**
   * The security key that signed the request: another key of the same caller sending the same
   * Idempotency-Key is refused, never given the answer, which can hold a secret shown once.
   */
  actor: string;
  key: string;
  method: string;
  path: string;
  body: unknown;
}

interface Claim {
  id: string;
  leaseToken: string;
}

/**
 * Idempotency-Key on POSTs (see ARCHITECTURE.md, "API conventions"). A request first claims its
 * key with a lease; its writes and its answer then commit in one transaction. So a retry either
 * gets the first answer (it committed) or runs as if the first never happened (it rolled back, or
 * died and its lease ran out): never twice. A request renews its lease while it runs, so one that runs
 * longer than a lease outside a transaction (a reconciliation run, a batch of orders) is never
 * overtaken and done again by a retry meanwhile. The same key with another request, or from another
 * security key, is a 422; a retry while the first still holds the lease is a 409. Only successful
 * answers are kept, sealed under the master key, because an answer can hold a secret (a new key's
 * private key).
 */
export class IdempotencyStore {
  constructor(
    private readonly orm: MikroORM,
    private readonly box: SecretBox,
    private readonly leaseMs = DEFAULT_LEASE_MS,
  ) {}

  /**
   * `transactional` false: the work runs on its own, and its answer is stored after it (see
   * RouteDefinition.transactional). `precheck`: checks made once the key is claimed and before the
   * work's transaction opens (see RouteDefinition.precheck); a request sent again is answered from
   * what is stored without them, so a check that fails now (a host name that no longer resolves)
   * cannot keep its first answer, which may hold a secret shown once, from it.
   */
  async run(
    request: IdempotentRequest,
    work: (em: EntityManager) => Promise<Reply>,
    { transactional = true, precheck }: { transactional?: boolean; precheck?: () => Promise<void> } = {},
  ): Promise<{ reply: Reply; replayed: boolean }> {
    if (request.key.length === 0 || request.key.length > 255) {
      throw new ApiError(400, 'validation_failed', 'Idempotency-Key must be 1–255 characters', [
        { path: 'headers.idempotency-key', code: 'invalid_idempotency_key', message: 'must be 1–255 characters' },
      ]);
    }
    const requestHash = requestFingerprint(request.method, request.path, request.body);
    const claimed = await this.claim(request, requestHash);
    if ('reply' in claimed) return { reply: claimed.reply, replayed: true };

    let reply: Reply;
    const stopRenewing = this.renewWhileRunning(claimed);
    try {
      await precheck?.();
      const inTransaction = async (em: EntityManager) => {
        const result = await work(em);
        if (result.status >= 200 && result.status < 300) {
          const stored = await em.nativeUpdate(
            IdempotencyRecord,
            { id: claimed.id, leaseToken: claimed.leaseToken },
            {
              responseStatus: result.status,
              responseCiphertext: this.box.seal(JSON.stringify(result), contextOf(claimed.id)),
              leaseExpiresAt: null,
            },
          );
          // Our lease ran out and a retry took the key over: roll back, so only one of us commits.
          if (stored === 0)
            throw inProgress('this request took too long and a retry with its Idempotency-Key took over');
        }
        return result;
      };
      reply = transactional
        ? await transactionally(this.orm.em.fork(), inTransaction)
        : await inTransaction(this.orm.em.fork());
    } catch (err) {
      stopRenewing();
      await this.release(claimed);
      throw err;
    }
    stopRenewing();
    if (reply.status < 200 || reply.status >= 300) await this.release(claimed);
    return { reply, replayed: false };
  }

  private async claim(request: IdempotentRequest, sameRequest: string, tries = 3): Promise<Claim | { reply: Reply }> {
    const em = this.orm.em.fork();
    // What is stored: the request and the key that sent it (records from before the key was part
    // of it hold the request's alone, and are still recognised until they expire).
    const requestHash = actorFingerprint(sameRequest, request.actor);
    const now = new Date();
    const claim: Claim = { id: randomUUID(), leaseToken: randomUUID() };
    const lease = { leaseToken: claim.leaseToken, leaseExpiresAt: new Date(now.getTime() + this.leaseMs) };
    try {
      await em.insert(IdempotencyRecord, {
        ...claim,
        ...lease,
        scope: request.scope,
        key: request.key,
        method: request.method,
        path: request.path.slice(0, 500),
        requestHash,
        responseStatus: null,
        responseCiphertext: null,
        createdAt: now,
        expiresAt: new Date(now.getTime() + RETENTION_MS),
      });
      return claim;
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException)) throw err;
    }
    const existing = await em.findOne(IdempotencyRecord, { scope: request.scope, key: request.key });
    if (!existing) {
      // Freed since our insert failed (its request was refused, or housekeeping removed it): claim it again.
      if (tries > 1) return this.claim(request, sameRequest, tries - 1);
      throw inProgress('a request with this Idempotency-Key is still running');
    }
    if (existing.expiresAt <= now) {
      // Past its 24 hours (housekeeping has not removed it yet): the key is free again.
      const taken = await em.nativeUpdate(
        IdempotencyRecord,
        { id: existing.id, expiresAt: { $lte: now } },
        {
          ...lease,
          requestHash,
          method: request.method,
          path: request.path.slice(0, 500),
          responseStatus: null,
          responseCiphertext: null,
          createdAt: now,
          expiresAt: new Date(now.getTime() + RETENTION_MS),
        },
      );
      if (taken === 1) return { id: existing.id, leaseToken: claim.leaseToken };
      throw inProgress('a request with this Idempotency-Key is still running');
    }
    if (existing.requestHash !== requestHash && existing.requestHash !== sameRequest) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used with a different request, or by another key',
      );
    }
    if (existing.responseCiphertext) {
      return { reply: JSON.parse(this.box.open(existing.responseCiphertext, contextOf(existing.id))) as Reply };
    }
    if (existing.leaseExpiresAt && existing.leaseExpiresAt > now)
      throw inProgress('a request with this Idempotency-Key is still running');
    // The first request died (or hung) holding the key and committed nothing: this one runs instead.
    const taken = await em.nativeUpdate(
      IdempotencyRecord,
      { id: existing.id, leaseToken: existing.leaseToken ?? null, responseStatus: null },
      lease,
    );
    if (taken === 1) return { id: existing.id, leaseToken: claim.leaseToken };
    throw inProgress('a request with this Idempotency-Key is still running');
  }

  /**
   * Renews the claim's lease every third of it until stopped. A renewal that fails (the database
   * briefly unreachable) is not retried: the next one comes a third of a lease later, and at worst
   * the lease runs out and a retry may take the key over.
   */
  private renewWhileRunning(claim: Claim): () => void {
    const timer = setInterval(() => {
      this.orm.em
        .fork()
        .nativeUpdate(
          IdempotencyRecord,
          { id: claim.id, leaseToken: claim.leaseToken, responseStatus: null },
          { leaseExpiresAt: new Date(Date.now() + this.leaseMs) },
        )
        .catch(() => undefined);
    }, this.leaseMs / 3);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Frees the key when the request failed, so the caller can retry it; only if we still hold it. */
  private async release(claim: Claim): Promise<void> {
    await this.orm.em
      .fork()
      .nativeDelete(IdempotencyRecord, { id: claim.id, leaseToken: claim.leaseToken, responseStatus: null });
  }
}

/** What makes two requests the same request: method, path and body. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([method, path, body]))
    .digest('hex');
}

/** The request's fingerprint bound to the key that sent it. */
function actorFingerprint(requestHash: string, actor: string): string {
  return createHash('sha256')
    .update(JSON.stringify([requestHash, actor]))
    .digest('hex');
}

function contextOf(id: string): string {
  return sealedContext('idempotency_record', id);
}

function inProgress(detail: string): ApiError {
  return new ApiError(409, 'idempotency_request_in_progress', detail, undefined, { 'retry-after': '1' });
}
