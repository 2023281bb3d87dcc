// When the token of an instrument given for one payment and not saved is let go (ARCHITECTURE.md,
// "Customers"): as the order's projection writes the instruction that named it. Only the page's
// payment that took it names it (an order, an amendment or a retry names saved instruments alone),
// and nothing names it again once let go. One entered that no payment took is swept a day later.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { isAtRest } from '../domain/instruction-status.js';
import type { OrderProjection } from './contract/activities.js';
import { instructionKeyPrefix } from './contract/ids.js';

/**
 * Erases the tokens the projection's instructions are done with, in its transaction, before their
 * rows are written (the first statement reads what the rows named until now):
 * - one an instruction stopped naming (another paid with, an amendment, its mandate ended). Changes
 *   are refused while a call is under way or unanswered, so no call under its key is left;
 * - one named by an instruction at rest, charged under one of its keys: no call of it is unanswered,
 *   and any later one goes under a new key, which may not charge it (`InstrumentStore.claim`);
 * - one named by an instruction settled or cancelled and never charged. Failed, a retry may still
 *   pay with it: the payment it was given for never happened.
 */
export async function eraseSpentOneTimeTokens(em: EntityManager, projection: OrderProjection): Promise<void> {
  const { tenantId, orderId, orderRef, version, instructions } = projection;
  const named = instructions.map((i) => ({
    instruction_ref: i.instructionRef,
    instrument_id: i.instrumentId ?? null,
    key_prefix: instructionKeyPrefix(tenantId, orderRef, i.instructionRef),
    at_rest: isAtRest(i.status),
    uncharged_too: i.status !== 'FAILED',
  }));
  await em
    .getConnection()
    .execute(
      ERASE_SPENT,
      [JSON.stringify(named), orderId, tenantId, version, tenantId],
      'run',
      em.getTransactionContext(),
    );
}

// One statement (one round trip of every projection): the instruments the rows named until this
// version and name no more, then those named by instructions at rest. An instrument is named by one
// instruction alone, so no row is updated twice.
const ERASE_SPENT = `
  with named as (
    select * from jsonb_to_recordset(?::jsonb)
      as n(instruction_ref text, instrument_id uuid, key_prefix text, at_rest boolean, uncharged_too boolean)
  ), let_go as (
    update payment_instrument p
       set token_ciphertext = null, updated_at = now()
      from payment_instruction i
      join named n on n.instruction_ref = i.instruction_ref
     where i.order_id = ? and i.tenant_id = ? and i.projection_version < ?::bigint
       and i.instrument_id is distinct from n.instrument_id
       and p.id = i.instrument_id and p.tenant_id = i.tenant_id and not p.saved and p.token_ciphertext is not null
    returning p.id
  )
  update payment_instrument p
     set token_ciphertext = null, updated_at = now()
    from named n
   where n.at_rest and p.id = n.instrument_id and p.tenant_id = ? and not p.saved and p.token_ciphertext is not null
     and (starts_with(p.charged_under_key, n.key_prefix) or (p.charged_under_key is null and n.uncharged_too))
     and p.id not in (select id from let_go)`;

/** How long an instrument entered on the payment page may wait to be named by the payment it was entered for. */
export const UNNAMED_ENTERED_KEPT_MS = 24 * 60 * 60_000;

/**
 * Erases the tokens of instruments entered on the payment page and not saved, a day after they were
 * entered, that can pay nothing more though no projection erased them:
 * - one the instruction it was entered for does not name: the page's update failed without a
 *   refusal (an outage, a timeout; `InstrumentStore.forgetUnpaid` erases refused ones at once) and
 *   was never taken, or the instruction let it go in a change its projection did not see (it went
 *   from one instrument to a third). Nothing else can name one (an order, an amendment or a retry
 *   names saved instruments alone);
 * - one named by a failed instruction (never charged, or the projection had erased it) of an order
 *   that ended and whose workflow has closed, a day before (`open_until`): no retry can come.
 * Only a read model a day behind its workflow could show an instrument so while a payment may still
 * call with it; then its call's first try finds no token and is refused, having sent nothing, and a
 * later try is an unknown outcome that keeps its key. Returns how many it erased, `batch` at a time,
 * so that no statement holds many locks, until a batch is short or it is told to stop.
 */
export async function sweepEnteredTokens(orm: MikroORM, signal: AbortSignal, batch = 500): Promise<number> {
  const connection = orm.em.getConnection();
  let erased = 0;
  while (!signal.aborted) {
    const rows = await connection.execute(SWEEP_ENTERED, [UNNAMED_ENTERED_KEPT_MS, UNNAMED_ENTERED_KEPT_MS, batch]);
    erased += rows.length;
    if (rows.length < batch) break;
  }
  return erased;
}

// (An order projected before `open_until` was kept, ended with it null, may still be open: only
// its never-charged failed tokens are erased early, and a retry with one is refused, sending nothing.)
const SWEEP_ENTERED = `
  update payment_instrument p
     set token_ciphertext = null, updated_at = now()
   where p.id in (
     select c.id from payment_instrument c
       left join payment_instruction i on i.id = c.entered_for_instruction_id and i.instrument_id = c.id
       left join payment_order o on o.id = i.order_id
      where not c.saved and c.token_ciphertext is not null and c.entered_for_instruction_id is not null
        and c.created_at < now() - make_interval(secs => ?::bigint / 1000.0)
        and (i.id is null
             or (i.status = 'FAILED' and o.status <> 'ACTIVE'
                 and (o.open_until is null or o.open_until < now() - make_interval(secs => ?::bigint / 1000.0))))
      order by c.created_at
      limit ?
      for update of c skip locked)
  returning p.id`;
