import { randomUUID } from 'node:crypto';
import { webhookDeliveryAttempts } from '../observability/metrics.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Got } from 'got';
import { Webhook } from 'standardwebhooks';
import { guardedLookup } from '../apps/outbound-guard.js';
import { OrderEvent, WebhookDelivery, WebhookEndpoint } from '../db/entities/index.js';
import { sealedContext } from '../db/sealed-columns.js';
import type { SecretBox } from '../db/secret-box.js';
import { outboundUrlProblem, type OutboundUrlPolicy } from '../domain/outbound-url.js';
import { OncePerKey } from '../domain/once-per-key.js';
import { TenantSlots } from '../domain/tenant-slots.js';
import { tenantAccounts } from '../db/tenant-accounts.js';
import {
  ACCOUNT_SLOW_WEBHOOK_SLOTS,
  ACCOUNT_WEBHOOK_SLOTS,
  deferralDelayMs,
  DELIVERY_TIMEOUT_MS,
  ENDPOINT_FAILING_LIMIT_MS,
  FAILING_STREAK_GAP_MS,
  nextAttemptDelay,
  parseRetryAfter,
} from '../domain/webhook.js';
import type { AttemptOutcome, WebhookActivities } from './contract.js';
import { EndpointPace, slotRefusal, takesFastSlots, type Full, type TryUnderWay } from './endpoint-pace.js';
import { recordEvents, takesType, tenantEvent, type OutboxEvent } from './outbox.js';
import { startDeliveries } from './start-deliveries.js';

/**
 * How many times one try is POSTed without its answer being recorded (the database failing after
 * the POST, and Temporal running the try again) before it is recorded as not sent: a receiver is not
 * sent the event every few minutes for as long as the failure lasts, and the schedule goes on.
 */
export const MAX_UNRECORDED_SENDS = 3;

/** A failed try that held its slot this long is timed, as an answer would be: the endpoint holds slots. */
const TIMED_FAILURE_MS = 1_000;

/** What a run of a try tells the runs after it (its heartbeat, kept by Temporal across retries). */
interface TryProgress {
  /** Times this try was POSTed by the runs before. */
  sent: number;
}

export interface WebhookActivityDependencies {
  orm: MikroORM;
  box: SecretBox;
  http: Got;
  outboundUrls: OutboundUrlPolicy;
  /** Starts the deliveries of the operational events recorded here; without it the dispatcher does. */
  temporal?: Client;
  /** How fast its endpoints answered this worker (default: each unproven, slow from SLOW_WEBHOOK_TRY_MS). */
  pace?: EndpointPace;
}

/**
 * One try of a webhook delivery (ARCHITECTURE.md, "Webhooks"): the event's body, byte for byte as
 * recorded, POSTed with the Standard Webhooks headers (its event id as `webhook-id`, the same on
 * every try, signed with the endpoint's secret and, during a rotation's grace, the previous one
 * too). A 2xx within 15 s succeeds; a 410 disables the endpoint; anything else is tried again on the
 * schedule, later if Retry-After asks; an endpoint failing for 5 days is disabled. Every try is
 * logged. No connection is held while the endpoint answers.
 */
export function createWebhookActivities({
  orm,
  box,
  http,
  outboundUrls,
  temporal,
  pace = new EndpointPace(),
}: WebhookActivityDependencies): WebhookActivities {
  // The worker's own slots cap them all; these cap each account's share, and within it what its
  // endpoints not known to answer fast may hold, together and each (domain/webhook.ts).
  const accountSlots = new TenantSlots(Infinity, ACCOUNT_WEBHOOK_SLOTS);
  const slowSlots = new TenantSlots(Infinity, ACCOUNT_SLOW_WEBHOOK_SLOTS);
  const accountOf = tenantAccounts(orm);
  /** Each account's put-off tries are said at most once a minute. */
  const putOffTold = new OncePerKey(60_000);
  const client = http.extend({
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    timeout: { request: DELIVERY_TIMEOUT_MS },
    dnsLookup: guardedLookup(outboundUrls) as never,
  });

  return {
    async attemptDelivery({ deliveryId, attempt }) {
      const em = orm.em.fork();
      const delivery = await em.findOne(WebhookDelivery, { id: deliveryId });
      if (!delivery || delivery.status !== 'PENDING') return { done: true, status: 'SKIPPED' };
      // A try already recorded is never sent again: this activity retried after its try committed, or
      // a run started again from the try after the last recorded while its stopped run's try was still
      // under way (the dispatcher's revival). Its recorded wait stands, and the next try follows it.
      if (attempt <= delivery.attempts) return { done: false, retryInMs: recordedWait(delivery.nextAttemptAt) };
      const accountId = await accountOf(delivery.tenantId);
      const { endpointId } = delivery;
      const endpointPace = pace.paceOf(endpointId, accountId);
      const fast = takesFastSlots(endpointPace);
      const full = slotRefusal(endpointPace, {
        accountFull: accountSlots.refusal(accountId) !== undefined,
        slowSlotsFull: slowSlots.refusal(accountId) !== undefined,
        endpointUnderWay: pace.underWay(endpointId),
      });
      if (full) {
        if (putOffTold.due(accountId)) {
          log.info(`webhook tries put off: ${FULL[full]}`, {
            accountId,
            tenantId: delivery.tenantId,
            endpointId: delivery.endpointId,
            deliveryId,
          });
        }
        throw putOff(full, Context.current().info.attempt);
      }
      accountSlots.take(accountId);
      if (!fast) slowSlots.take(accountId);
      const tried = pace.start(endpointId, accountId, fast);
      try {
        return await send(em, delivery, attempt, tried);
      } finally {
        tried.ended();
        accountSlots.release(accountId);
        if (!fast) slowSlots.release(accountId);
      }
    },
  };

  /** The try itself, in one of its account's slots; `tried` is told how fast its endpoint answered. */
  async function send(
    em: EntityManager,
    delivery: WebhookDelivery,
    attempt: number,
    tried: TryUnderWay,
  ): Promise<AttemptOutcome> {
    const deliveryId = delivery.id;
    const endpoint = await em.findOne(WebhookEndpoint, { id: delivery.endpointId });
    const event = await em.findOneOrFail(OrderEvent, { id: delivery.eventId });
    // Disabled, or no longer taking this type (its receiver may break on it): not sent again.
    if (!endpoint?.enabled || !takesType(endpoint.eventTypes, event.type)) {
      await em.nativeUpdate(
        WebhookDelivery,
        { id: deliveryId, status: 'PENDING', attempts: { $lt: attempt } },
        { status: 'FAILED', finishedAt: new Date(), nextAttemptAt: null },
      );
      return { done: true, status: 'SKIPPED' };
    }

    const sentAt = new Date();
    const started = performance.now();
    let statusCode: number | undefined;
    let error: string | undefined;
    let retryAfterMs: number | undefined;
    /** How long the endpoint took to answer, or to time out: what its pace is judged by. */
    let answeredInMs: number | undefined;
    const problem = outboundUrlProblem(endpoint.url, outboundUrls);
    const sent = (Context.current().info.heartbeatDetails as TryProgress | undefined)?.sent ?? 0;
    const unrecorded = !problem && sent >= MAX_UNRECORDED_SENDS;
    if (problem) {
      error = `url not allowed: ${problem}`;
    } else if (unrecorded) {
      error = `not sent again: sent ${sent} times, and no answer could be recorded`;
    } else {
      // Signed before the try: a secret this worker cannot open (a master key not yet rolled out
      // to it) is our failure, retried by Temporal, never a failure of the tenant's endpoint. It is
      // counted apart (the metric to alert on) and logged: the delivery waits until an operator gives the key.
      let signature: string;
      try {
        signature = signatures(endpoint, event, sentAt);
      } catch (err) {
        webhookDeliveryAttempts.inc({ outcome: 'unsigned' });
        log.warn('webhook attempt not sent: the endpoint secret does not open here', {
          tenantId: delivery.tenantId,
          endpointId: endpoint.id,
          deliveryId,
          attempt,
          error: (err as Error).message,
        });
        throw err;
      }
      Context.current().heartbeat({ sent: sent + 1 } satisfies TryProgress);
      const postedAt = performance.now();
      try {
        const response = await post(endpoint.url, event.payload, {
          'content-type': 'application/json',
          'user-agent': 'payment-scheduler-webhooks',
          'webhook-id': event.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        });
        statusCode = response.statusCode;
        answeredInMs = performance.now() - postedAt;
        retryAfterMs = parseRetryAfter(header(response.headers['retry-after']), Date.now());
      } catch (err) {
        error = describe(err);
        // A timeout, or a connection cut after it held the slot a while (reset after 14 s), says how
        // long the endpoint holds one; a connection refused, or an address the guard turned away, does not.
        const heldMs = performance.now() - postedAt;
        if ((err as { code?: string }).code === 'ETIMEDOUT' || heldMs >= TIMED_FAILURE_MS) answeredInMs = heldMs;
      }
    }
    const latencyMs = Math.round(performance.now() - started);
    // Only an answer, or its timeout, tells how fast the endpoint answers: a URL refused, a try not
    // sent or a connection refused says nothing.
    if (answeredInMs !== undefined) tried.answered(answeredInMs);
    const succeeded = statusCode !== undefined && statusCode >= 200 && statusCode < 300;

    const outcome = await orm.em.fork().transactional(async (tx) => {
      const now = new Date();
      // A try that outlived its time limit can finish after the try Temporal started in its place
      // has been recorded, even after the delivery ended: what it saw is history, and changes
      // nothing (not the delivery's status, nor the endpoint's streak, nor anyone told).
      const [current] = await tx
        .getConnection()
        .execute<({ status: WebhookDelivery['status']; attempts: number; next_attempt_at: Date | null } | undefined)[]>(
          `select status, attempts, next_attempt_at from webhook_delivery where id = ? for update`,
          [deliveryId],
          'all',
          tx.getTransactionContext(),
        );
      // Gone with its endpoint meanwhile: nothing left to record.
      if (!current) return { overtaken: true, status: 'SKIPPED' as const, retryInMs: undefined, operational: [] };
      if (current.status !== 'PENDING' || current.attempts >= attempt)
        return {
          overtaken: true,
          status: current.status,
          retryInMs:
            current.status === 'PENDING'
              ? recordedWait(current.next_attempt_at && new Date(current.next_attempt_at))
              : undefined,
          operational: [],
        };
      // The endpoint's row is changed by statements that read it as they write it (tries of other
      // deliveries run at the same time, and the tenant may move or re-enable it meanwhile), and only
      // while it still has the URL this try called: an answer from a URL it has left says nothing of
      // the one it has (a 410 from its old receiver must not disable the new one).
      const endpointRows = (sql: string, params: unknown[]) =>
        tx.getConnection().execute<Record<string, unknown>[]>(sql, params, 'all', tx.getTransactionContext());
      const disable = async (reason: string) =>
        (
          await endpointRows(
            `update webhook_endpoint set enabled = false, disabled_reason = ? where id = ? and url = ? and enabled returning id`,
            [reason, endpoint.id, endpoint.url],
          )
        ).length > 0;
      // Disabled by this try (and so told of), or found disabled at this URL by another's: either
      // way this delivery ends here, as the next try would end it on finding the endpoint off.
      let disabled = false;
      let off = false;
      if (succeeded) {
        await endpointRows(`update webhook_endpoint set failing_since = null where id = ? and url = ?`, [
          endpoint.id,
          endpoint.url,
        ]);
      } else if (statusCode === 410) {
        disabled = await disable(`the endpoint answered 410 Gone on ${now.toISOString()}`);
        off =
          disabled ||
          (
            await endpointRows(`select id from webhook_endpoint where id = ? and url = ? and not enabled`, [
              endpoint.id,
              endpoint.url,
            ])
          ).length > 0;
      } else if (!unrecorded) {
        // (A try not sent again, whose earlier sends could not be recorded, is our failure, not the
        // endpoint's: it may have answered 2xx to each.)
        // A streak whose last failure is older than any wait between tries had a quiet spell, not
        // failures, in between: it starts again (so does one from before last_failed_at was kept).
        const [row] = await endpointRows(
          `update webhook_endpoint
                set failing_since = case when last_failed_at >= ? then coalesce(failing_since, ?) else ? end,
                    last_failed_at = ?
              where id = ? and url = ? returning failing_since, enabled`,
          [new Date(now.getTime() - FAILING_STREAK_GAP_MS), now, now, now, endpoint.id, endpoint.url],
        );
        const failingSince = row && new Date(row.failing_since as Date);
        if (row && !row.enabled) off = true;
        else if (failingSince && now.getTime() - failingSince.getTime() > ENDPOINT_FAILING_LIMIT_MS)
          disabled = off = await disable(`every delivery has failed since ${failingSince.toISOString()}`);
      }
      const retryInMs = succeeded || off ? undefined : nextAttemptDelay(attempt, retryAfterMs);
      const status = succeeded
        ? ('SUCCEEDED' as const)
        : retryInMs === undefined
          ? ('FAILED' as const)
          : ('PENDING' as const);
      const nextAttemptAt = retryInMs === undefined ? null : new Date(now.getTime() + retryInMs);
      // An endpoint that dies is not silent: its tenant's other endpoints are told (never about a
      // delivery of such an event itself, so two dead endpoints cannot tell each other for ever).
      const told: OutboxEvent[] = [];
      if (disabled) told.push(endpointDisabled(endpoint, now, statusCode === 410 ? 'gone' : 'failing'));
      if (status === 'FAILED' && !off && !event.type.startsWith('webhook.'))
        told.push(deliveryExhausted(delivery, endpoint, event, attempt, now));
      const operational = told.length > 0 ? await recordEvents(tx, delivery.tenantId, told, endpoint.id) : [];
      await tx.getConnection().execute(
        `insert into webhook_attempt (id, delivery_id, tenant_id, attempt, attempted_at, status_code, latency_ms, error, next_attempt_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?)
           on conflict (delivery_id, attempt) do update set attempted_at = excluded.attempted_at, status_code = excluded.status_code,
             latency_ms = excluded.latency_ms, error = excluded.error, next_attempt_at = excluded.next_attempt_at`,
        [
          randomUUID(),
          deliveryId,
          delivery.tenantId,
          attempt,
          sentAt,
          statusCode ?? null,
          latencyMs,
          error?.slice(0, 500) ?? null,
          nextAttemptAt,
        ],
        'run',
        tx.getTransactionContext(),
      );
      await tx.nativeUpdate(
        WebhookDelivery,
        { id: deliveryId },
        { status, attempts: attempt, nextAttemptAt, finishedAt: status === 'PENDING' ? null : now },
      );
      return { overtaken: false, status, retryInMs, operational };
    });
    webhookDeliveryAttempts.inc({
      outcome: succeeded ? 'delivered' : statusCode === 410 ? 'gone' : unrecorded ? 'unrecorded' : 'failed',
    });
    if (outcome.overtaken)
      log.warn('webhook attempt overtaken: a later try was recorded first, so this one changes nothing', {
        tenantId: delivery.tenantId,
        deliveryId,
        attempt,
        statusCode,
        error,
        status: outcome.status,
      });
    if (temporal && outcome.operational.length > 0) await startDeliveries(temporal, orm, outcome.operational);
    log.info('webhook attempt', {
      tenantId: delivery.tenantId,
      deliveryId,
      eventType: event.type,
      attempt,
      statusCode,
      latencyMs,
      error,
      retryInMs: outcome.retryInMs,
    });
    return outcome.status === 'PENDING'
      ? { done: false, retryInMs: outcome.retryInMs! }
      : { done: true, status: outcome.status };
  }

  /**
   * POSTs and gives back the status and headers, never the body: a receiver could send gigabytes
   * for as long as the timeout allows, and nothing in it matters here.
   */
  function post(
    url: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{ statusCode: number; headers: IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const stream = client.stream.post(url, { body, headers });
      stream.once('response', (response: { statusCode: number; headers: IncomingHttpHeaders }) => {
        resolve({ statusCode: response.statusCode, headers: response.headers });
        stream.destroy();
      });
      stream.once('error', reject);
      stream.on('error', () => undefined); // a destroy after the answer is no failure
    });
  }

  function signatures(endpoint: WebhookEndpoint, event: OrderEvent, at: Date): string {
    const secrets = [box.open(endpoint.secretCiphertext, sealedContext('webhook_endpoint', endpoint.id))];
    if (
      endpoint.previousSecretCiphertext &&
      endpoint.previousSecretExpiresAt &&
      endpoint.previousSecretExpiresAt > at
    ) {
      secrets.push(box.open(endpoint.previousSecretCiphertext, sealedContext('webhook_endpoint', endpoint.id)));
    }
    // During a rotation's grace both are sent, space-separated: receivers holding either verify.
    return secrets
      .map((secret) => new Webhook(secret.replace(/^whsec_/, '')).sign(event.id, at, event.payload))
      .join(' ');
  }
}

/** Whose slots a try found taken. */
const FULL: Record<Full, string> = {
  account: 'the account has every webhook slot it may have on this worker',
  'account’s slow endpoints':
    'the account’s endpoints not known to answer fast have every webhook slot they may have on this worker',
  'slow endpoint':
    'the endpoint, not known to answer fast (or not lately), has every webhook slot it may have on this worker',
};

/**
 * A try put off because its account, or its endpoints not known to answer fast, have every slot they may have: failed for
 * Temporal to run again after a wait (retries of one activity add nothing to the workflow's
 * history), never recorded, so it takes none of the schedule's eight tries. Benign: Temporal logs
 * it at debug, not as a failure.
 */
function putOff(full: Full, deferrals: number): ApplicationFailure {
  webhookDeliveryAttempts.inc({ outcome: 'deferred' });
  return ApplicationFailure.create({
    type: 'WebhookSlotsFull',
    message: `put off: ${FULL[full]}`,
    nextRetryDelay: deferralDelayMs(deferrals, Math.random()),
    category: 'BENIGN',
  });
}

/** How long until the next try a delivery's record says, as a try that finds it recorded waits. */
function recordedWait(nextAttemptAt: Date | null | undefined): number {
  return Math.max(0, (nextAttemptAt?.getTime() ?? 0) - Date.now());
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describe(err: unknown): string {
  const { code, message } = err as { code?: string; message?: string };
  if (code === 'ETIMEDOUT') return `no answer within ${DELIVERY_TIMEOUT_MS / 1000} s`;
  return [code, message].filter(Boolean).join(': ') || 'request failed';
}

/**
 * An endpoint as its tenant's other endpoints are told of it: its id, and its URL's origin alone.
 * Its path, query or credentials may hold a token for its own receiver (`/services/T…/B…/<secret>`),
 * and those others may be another party's relays.
 */
function toldOf(endpoint: WebhookEndpoint): { endpointId: string; url: string } {
  return { endpointId: endpoint.id, url: new URL(endpoint.url).origin };
}

/** `webhook.endpoint.disabled`: told once per disabling, to the tenant's other endpoints. */
function endpointDisabled(endpoint: WebhookEndpoint, at: Date, why: 'gone' | 'failing'): OutboxEvent {
  return tenantEvent(
    'webhook.endpoint.disabled',
    `webhook:${endpoint.id}:disabled:${at.toISOString()}`,
    endpoint.tenantId,
    at,
    {
      endpoint: toldOf(endpoint),
      reason: why === 'gone' ? 'the endpoint answered 410 Gone' : 'every delivery failed for five days',
    },
  );
}

/** `webhook.delivery.exhausted`: an event one endpoint never took, after every try of the schedule. */
function deliveryExhausted(
  delivery: WebhookDelivery,
  endpoint: WebhookEndpoint,
  event: OrderEvent,
  attempts: number,
  at: Date,
): OutboxEvent {
  return tenantEvent('webhook.delivery.exhausted', `webhook:${delivery.id}:exhausted`, delivery.tenantId, at, {
    deliveryId: delivery.id,
    endpoint: toldOf(endpoint),
    event: { eventId: event.id, type: event.type, orderRef: event.orderRef ?? null },
    attempts,
  });
}
