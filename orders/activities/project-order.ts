import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { activityInfo, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { PaymentInstrument, PaymentOrder } from '../../db/entities/index.js';
import { recordEvents, type OutboxEvent } from '../../webhooks/outbox.js';
import { startDeliveries } from '../../webhooks/start-deliveries.js';
import type { OrderProjection } from '../contract/activities.js';
import { outboxEventOf, type ToldOrder } from '../event-payloads.js';
import { eraseSpentOneTimeTokens } from '../one-time-instruments.js';
import { recordSettlements, upsertInstructions, upsertRefunds } from '../read-model.js';
import { STATUS_OF_INSTRUCTION_EVENT } from '../../domain/webhook.js';
import { instructionTransitions } from '../../observability/metrics.js';

/**
 * Writes an order's changes into the read model (ARCHITECTURE.md, "Temporal design"): the order row,
 * only the instructions that changed (in one statement, idempotent by version per row), and the
 * events told meanwhile, each recorded once with its deliveries, all in one transaction. The
 * deliveries are started after it commits.
 */
export function createProjectOrder(orm: MikroORM, temporal?: Client) {
  return async function projectOrder(projection: OrderProjection): Promise<void> {
    const recorded = new Set<string>();
    const endsAt = attemptEndsAt();
    const deliveries = await orm.em.fork().transactional(async (em) => {
      recorded.clear();
      await statementsEndBy(em, endsAt);
      await em.nativeUpdate(
        PaymentOrder,
        { id: projection.orderId, tenantId: projection.tenantId, projectionVersion: { $lt: projection.version } },
        {
          status: projection.status,
          ...(projection.openUntil !== undefined
            ? { openUntil: projection.openUntil === null ? null : new Date(projection.openUntil) }
            : {}),
          projectionVersion: projection.version,
          updatedAt: new Date(),
        },
      );
      // Each step checks the attempt's time first: none begins after the attempt has ended.
      if (projection.instructions.length > 0) {
        stillInTime(endsAt);
        await eraseSpentOneTimeTokens(em, projection);
        await upsertInstructions(em, projection);
      }
      if (projection.refunds?.length) {
        stillInTime(endsAt);
        const untaken = await upsertRefunds(em, projection);
        if (untaken.length > 0) {
          // Rare enough (a worker killed, then an update lost) to be worth an operator's look.
          log.warn('deleted refund rows of refunds the order’s workflow never took; their numbers are another’s', {
            tenantId: projection.tenantId,
            orderId: projection.orderId,
            refunds: untaken,
          });
        }
      }
      if (projection.events.length === 0) return [];
      stillInTime(endsAt);
      await recordSettlements(em, projection);
      return recordEvents(em, projection.tenantId, await outboxEvents(em, projection), undefined, (event) =>
        recorded.add(event.eventKey),
      );
    });
    countTransitions(projection, recorded);
    // Sent without waiting: a delivery's own workflow takes it from here (the dispatcher, if this start fails).
    if (temporal && deliveries.length > 0) {
      const starting = startDeliveries(temporal, orm, deliveries);
      // A local write holds its order's workflow task while it runs: its starts go on without it.
      if (!activityInfo().isLocal) await starting;
    }
  };
}

/**
 * When this attempt ends (epoch ms; undefined when it has no limit): its start-to-close timeout,
 * counted from now. Temporal does not stop an attempt that timed out (a local write's after 5 s,
 * when the task queue's takes over): the write itself must not outlive it, or it goes on waiting
 * for a lock or a slow database, holding a connection of the pool payments share, beside the
 * attempts after it. (A local attempt that sdk-core cuts short at the 6 s schedule-to-close limit
 * still runs to its own 5 s: the limit counts from the first attempt's schedule, which an attempt
 * is not told.)
 */
function attemptEndsAt(): number | undefined {
  const { startToCloseTimeoutMs } = activityInfo();
  return startToCloseTimeoutMs > 0 ? Date.now() + startToCloseTimeoutMs : undefined;
}

/** Each statement of the transaction is cut at the time the attempt has left as it begins (`statement_timeout`). */
async function statementsEndBy(em: EntityManager, endsAt: number | undefined): Promise<void> {
  if (endsAt === undefined) return;
  await em.execute(`set local statement_timeout = ${Math.max(1, Math.floor(endsAt - Date.now()))}`);
}

function stillInTime(endsAt: number | undefined): void {
  if (endsAt !== undefined && Date.now() >= endsAt) throw new Error("the projection's attempt ran out of time");
}

/** Counts each transition once: only events this projection recorded (a retried one records none again). */
function countTransitions(projection: OrderProjection, recorded: Set<string>): void {
  for (const event of projection.events) {
    const status = STATUS_OF_INSTRUCTION_EVENT.get(event.type);
    if (!event.instruction || !status || !recorded.has(event.eventKey)) continue;
    const { direction, appId } = event.instruction;
    instructionTransitions.inc({ direction, app: appId ?? 'none', status });
  }
}

// What the events' bodies echo, in one read: the order's row and the metadata of the instructions
// they tell of (a JSON object by instructionRef).
const TOLD_WITH = `
  select o.tenant_id as "tenantId", o.order_ref as "orderRef", o.customer_ref as "customerRef", o.metadata,
    (select coalesce(jsonb_object_agg(i.instruction_ref, i.metadata), '{}'::jsonb)
     from payment_instruction i
     where i.order_id = o.id and i.tenant_id = o.tenant_id
       and i.instruction_ref in (select jsonb_array_elements_text(?::jsonb))) as "instructionMetadata"
  from payment_order o
  where o.id = ? and o.tenant_id = ?`;

/** The projection's events with their bodies: the order's and each instruction's metadata echoed. */
async function outboxEvents(em: EntityManager, projection: OrderProjection): Promise<OutboxEvent[]> {
  const refs = [...new Set(projection.events.flatMap((e) => (e.instruction ? [e.instruction.instructionRef] : [])))];
  const [row]: (ToldOrder & { instructionMetadata: Record<string, Record<string, string>> })[] = await em
    .getConnection()
    .execute(
      TOLD_WITH,
      [JSON.stringify(refs), projection.orderId, projection.tenantId],
      'all',
      em.getTransactionContext(),
    );
  if (!row) throw new Error(`order ${projection.orderId} is not in the read model`);
  const { instructionMetadata, ...order } = row;
  // A Map, not the object: a reference may be named like one of Object's own properties.
  const metadataOf = new Map(Object.entries(instructionMetadata));
  // A coming debit is told with the mandate it is collected under.
  const instrumentIds = [
    ...new Set(
      projection.events.flatMap((e) =>
        e.type === 'instruction.upcoming' && e.instruction?.instrumentId ? [e.instruction.instrumentId] : [],
      ),
    ),
  ];
  const mandates = instrumentIds.length
    ? await em.find(
        PaymentInstrument,
        { id: { $in: instrumentIds }, tenantId: order.tenantId },
        { fields: ['id', 'mandateRef'] },
      )
    : [];
  const mandateOf = new Map(mandates.map((m) => [m.id, m.mandateRef ?? undefined]));
  return projection.events.map((event) =>
    outboxEventOf(
      event,
      order,
      projection.status,
      event.instruction ? (metadataOf.get(event.instruction.instructionRef) ?? {}) : undefined,
      event.type === 'instruction.upcoming' && event.instruction?.instrumentId
        ? mandateOf.get(event.instruction.instrumentId)
        : undefined,
    ),
  );
}
