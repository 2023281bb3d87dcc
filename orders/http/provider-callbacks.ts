import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import type { AppConnector, CallbackReference, CallbackResult, MandateNews } from '../../apps/app-connector.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { findApp } from '../../domain/app-catalog.js';
import { mandateEnded } from '../../domain/instrument.js';
import {
  asInReplacedTimes,
  madeUnderDigest,
  secretIsAccount,
  takenUnderRetired,
} from '../../domain/retired-secrets.js';
import { loadInstalledApp, openSecretTimes } from '../../db/installed-apps.js';
import { sealedContext } from '../../db/sealed-columns.js';
import { SecretOpenError, type SecretBox } from '../../db/secret-box.js';
import type { ProviderResults } from '../provider-results.js';
import type { Mandates } from '../mandates.js';
import { AppInstallation, PaymentInstrument } from '../../db/entities/index.js';
import { ApiError } from '../../api/http/problem.js';
import type { RouteTable } from '../../api/http/route-table.js';
import { z } from '../../api/http/zod.js';
import { AppIdParamsSchema } from '../../api/marketplace/schemas.js';
import { UUID, UUID_TEXT } from '../../domain/uuid.js';

export interface ProviderRouteDeps {
  results: ProviderResults;
  mandates: Mandates;
  secretBox: SecretBox;
  apps: Map<string, AppConnector>;
}

/**
 * The tenant our callback address names: a UUID, which a provider appending its own query with a
 * second `?` (not `&`) leaves followed by `?` and its own (read as part of our value).
 */
const TENANT_IN_ADDRESS = new RegExp(`^${UUID_TEXT}(?:\\?.*)?$`, 'i');
const tenantNamed = (value: string | undefined) => value?.slice(0, 36);

const CallbackAnswerSchema = z
  .object({
    received: z.literal(true),
    duplicate: z.boolean().openapi({ description: 'This result had been received before' }),
  })
  .openapi('CallbackReceived');

/** The tenants a mandate's callback is checked against, at most: each costs a signature check. */
const MANDATE_HOLDERS_MAX = 20;

const badSignature = () => new ApiError(401, 'invalid_signature', 'the callback’s signature does not verify');

/**
 * Asynchronous results from providers (a bank debit settling days later). The body names the
 * tenant's payment; the signature must verify with that tenant's installation of the app, or the
 * callback is refused and changes nothing. A verified result goes to ProviderResults; if Temporal
 * cannot take it, the answer is a 503 so that the provider tries again.
 */
export function addProviderRoutes(routes: RouteTable, { results, mandates, secretBox, apps }: ProviderRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/providers/:appId/callbacks',
    scope: 'public',
    roles: [],
    summary: 'A provider’s signed asynchronous result',
    description:
      'Called by providers, not by tenants. SANDBOX_BANK signs with `sandbox-signature`; HTTP_CONNECTOR with the Standard Webhooks ' +
      'headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). A bad signature is a 401 and changes nothing.',
    tags: ['Providers'],
    params: AppIdParamsSchema,
    query: z.object({
      tenantId: z.string().regex(TENANT_IN_ADDRESS).optional().openapi({
        description:
          'The tenant the callback is for, as the address we gave the provider names it. Addresses given before they named one have none.',
      }),
    }),
    body: z.record(z.string(), z.unknown()).openapi({ description: 'As the app’s provider sends it' }),
    responses: { 202: { description: 'Received, and handed to the order’s workflow', schema: CallbackAnswerSchema } },
    problems: [404, 503],
    handler: async ({ params, query, req, em, afterCommit }) => {
      const connector = apps.get(params.appId);
      if (!connector?.callbackReference || !connector.verifyCallback)
        throw new ApiError(404, 'app_not_found', `${params.appId} takes no callbacks`);
      const rawBody = (req as { rawBody?: string }).rawBody ?? '';
      // A mandate's news names no tenant in its body: the address we gave the provider does (those
      // given before it did leave the instruments holding the mandate to say, and the tenant whose
      // secret signs it is the one it is for). Each tenant's provider names its own mandates, so two
      // tenants may hold one named alike; one tenant may hold it on several instruments.
      const mandateRef = connector.mandateCallbacks?.mandateRefOf(rawBody);
      if (mandateRef !== undefined) {
        const signed = await signingHolder(
          em,
          secretBox,
          params.appId,
          mandateRef,
          tenantNamed(query.tenantId),
          req.log,
          (installation) =>
            connector.mandateCallbacks!.verify(
              rawBody,
              req.headers as Record<string, string | undefined>,
              installation,
            ),
        );
        if (!signed) throw badSignature();
        // Locked, in one order: two callbacks of one mandate (a confirmation and a cancel) apply one after the other.
        const held = await em.find(PaymentInstrument, heldBy(signed.tenantId, params.appId, mandateRef), {
          lockMode: LockMode.PESSIMISTIC_WRITE,
          orderBy: { id: 'asc' },
        });
        let moved = 0;
        for (const instrument of held) {
          let isFor: boolean;
          try {
            isFor = madeUnder(secretBox, params.appId, instrument, signed.under);
          } catch (err) {
            throw unverifiableNow(err, signed.tenantId, params.appId, req.log);
          }
          if (!isFor) continue;
          const then = await mandates.moved(em, instrument, signed.news);
          if (!then) continue;
          afterCommit(() => then(req.log));
          moved += 1;
        }
        return { status: 202, body: { received: true, duplicate: moved === 0 } };
      }
      const reference = connector.callbackReference(rawBody);
      if (!reference || !UUID.test(reference.tenantId)) throw badSignature();
      const named = tenantNamed(query.tenantId);
      if (named !== undefined && named.toLowerCase() !== reference.tenantId.toLowerCase()) throw badSignature();
      const installation = await installationOrUnverifiable(em, secretBox, reference.tenantId, params.appId, req.log);
      // An app the tenant does not have and a wrong signature look the same to the caller.
      const headers = req.headers as Record<string, string | undefined>;
      const result = installation
        ? (connector.verifyCallback(rawBody, headers, installation) ??
          (await verifiedBeforeRetired(em, secretBox, params.appId, reference, installation, req.log, (before) =>
            connector.verifyCallback!(rawBody, headers, before),
          )))
        : undefined;
      if (!result || result.result.providerRef !== reference.providerRef) throw badSignature();

      const { id, delivered } = await results.record(em, params.appId, reference, result);
      if (delivered) return { status: 202, body: { received: true, duplicate: true } };
      afterCommit(() => results.deliver(id, params.appId, reference, result, req.log));
      return { status: 202, body: { received: true, duplicate: false } };
    },
  });
}

/**
 * The tenant's installation of the app, to verify its callback with. One whose credentials cannot be
 * opened (a master key rotated without MASTER_KEY_PREVIOUS) is our fault, not the provider's: the
 * callback is refused as for now (503), so that the provider sends it again once an operator has put
 * the key back, and not as forged, which it may take as final.
 */
async function installationOrUnverifiable(
  em: EntityManager,
  secretBox: SecretBox,
  tenantId: string,
  appId: string,
  log: { error: (obj: object, msg: string) => void },
): Promise<InstalledApp | undefined> {
  try {
    return await loadInstalledApp(em, secretBox, tenantId, appId);
  } catch (err) {
    throw unverifiableNow(err, tenantId, appId, log);
  }
}

/** A callback whose installation's credentials cannot be opened: 503, to be sent again once they can. */
function unverifiableNow(
  err: unknown,
  tenantId: string,
  appId: string,
  log: { error: (obj: object, msg: string) => void },
): unknown {
  if (!(err instanceof SecretOpenError)) return err;
  log.error(
    { tenantId, appId, reason: err.message },
    'a provider callback cannot be verified: the installation’s credentials cannot be opened with the master keys given',
  );
  return new ApiError(
    503,
    'callback_unverifiable',
    'this callback cannot be verified just now; send it again later',
    undefined,
    { 'retry-after': String(UNVERIFIABLE_RETRY_AFTER_SECONDS) },
  );
}

/**
 * A callback the installation's current secret does not verify, verified by a value of its callback
 * secret the tenant replaced since, still in time (domain/retired-secrets.ts): taken only as a
 * return or chargeback of a collection the instruction it names settled while that value was
 * current. A chargeback of a payment made under the old sandbox key comes signed with it.
 */
async function verifiedBeforeRetired(
  em: EntityManager,
  secretBox: SecretBox,
  appId: string,
  reference: CallbackReference,
  installation: InstalledApp,
  log: { info: (obj: object, msg: string) => void; error: (obj: object, msg: string) => void },
  verify: (before: InstalledApp) => CallbackResult | undefined,
): Promise<CallbackResult | undefined> {
  const { tenantId, providerRef } = reference;
  const times = await replacedInTime(em, secretBox, appId, tenantId, installation).catch((err: unknown) => {
    throw unverifiableNow(err, tenantId, appId, log);
  });
  for (const then of times) {
    const verified = verify(then.installation);
    const result = verified && takenUnderRetired(verified);
    if (!result || result.result.providerRef !== providerRef) continue;
    if (!(await settledBetween(em, reference, appId, then.from, then.to))) continue;
    log.info(
      { tenantId, appId, providerRef, replacedAt: then.to.toISOString() },
      'a provider callback verified by a callback secret replaced since, for a collection settled under it: taken, not collected again',
    );
    return result;
  }
  return undefined;
}

/** The installation as it was in a time of a replaced value of its callback secret, and the time. */
interface ReplacedTime {
  installation: InstalledApp;
  from: Date;
  to: Date;
}

/** The installation whose callback secret verified a mandate's news: its current one, or as in a replaced value's time. */
type VerifiedUnder = { installation: InstalledApp } | ReplacedTime;

/**
 * The installation as it was in each time of a replaced value of its callback secret that still
 * verifies (domain/retired-secrets.ts), latest first; none when nothing was replaced.
 */
async function replacedInTime(
  em: EntityManager,
  secretBox: SecretBox,
  appId: string,
  tenantId: string,
  installation: InstalledApp,
): Promise<ReplacedTime[]> {
  const app = findApp(appId);
  const row = await em.findOne(AppInstallation, { tenantId, appId });
  if (!app || !row?.retiredSecretsCiphertext) return [];
  return asInReplacedTimes(app, installation, openSecretTimes(secretBox, row), new Date());
}

/**
 * Whether the instruction the callback names, a collection, settled its payment `providerRef`
 * through the app from `from` to `to`: by a settlement row (earlier payments of it too; one written
 * before rows named their app, by the instruction's), or by the instruction itself (its current
 * payment, which a worker of before settlement rows settled with none). Not a
 * payment still under way at the change, whose result comes by polls under the current secret; not
 * a payout, which a return would pay out again.
 */
async function settledBetween(
  em: EntityManager,
  reference: CallbackReference,
  appId: string,
  from: Date,
  to: Date,
): Promise<boolean> {
  const { tenantId, orderRef, instructionRef, providerRef } = reference;
  const [{ settled }] = await em.getConnection().execute<{ settled: boolean }[]>(
    `with named as (select i.id, i.app_id, i.provider_ref, i.settled_at from payment_instruction i
                      join payment_order o on o.id = i.order_id
                     where o.tenant_id = ? and o.order_ref = ? and i.instruction_ref = ? and i.direction = 'DEBIT')
     select exists (select 1 from payment_settlement s join named n on n.id = s.instruction_id
                     where coalesce(s.app_id, n.app_id) = ? and s.provider_ref = ?
                       and s.settled_at >= ? and s.settled_at < ?)
         or exists (select 1 from named n
                     where n.app_id = ? and n.provider_ref = ? and n.settled_at >= ? and n.settled_at < ?) as settled`,
    [tenantId, orderRef, instructionRef, appId, providerRef, from, to, appId, providerRef, from, to],
    'all',
    em.getTransactionContext(),
  );
  return settled;
}

/** When a provider may send again a callback refused for want of the tenant's credentials: an operator's fix takes minutes. */
const UNVERIFIABLE_RETRY_AFTER_SECONDS = 300;

/**
 * The tenant holding `mandateRef` whose installation of the app verifies the callback, with its
 * news; undefined when none does. With `named` (the tenant the callback's address names), that
 * tenant alone. Without (addresses given before they named one), tenants are tried by their oldest
 * instrument holding it first: the one that took the mandate when it was made comes before any that
 * copied its name later, and at most 20 are tried. A tenant whose credentials cannot be opened is
 * passed over then (its callbacks cannot verify anyway); named, it is 503 (as `unverifiableNow`).
 * Every holder's current secret is tried before any replaced one (`endedUnderRetired`, where the
 * secret is the account: `secretIsAccount`).
 * The news is for the instruments made under the secret that verified it (`madeUnder`).
 */
async function signingHolder(
  em: EntityManager,
  secretBox: SecretBox,
  appId: string,
  mandateRef: string,
  named: string | undefined,
  log: { info: (obj: object, msg: string) => void; error: (obj: object, msg: string) => void },
  verify: (installation: InstalledApp) => MandateNews | undefined,
): Promise<MandateSigner | undefined> {
  const holders: { tenant_id: string }[] = await em.getConnection().execute(
    `select tenant_id from payment_instrument where app_id = ? and mandate_ref = ? ${named ? 'and tenant_id = ?' : ''}
      group by tenant_id order by min(created_at), tenant_id limit ?`,
    [appId, mandateRef, ...(named ? [named] : []), MANDATE_HOLDERS_MAX],
    'all',
    em.getTransactionContext(),
  );
  const readable: { tenantId: string; installation: InstalledApp }[] = [];
  for (const { tenant_id: tenantId } of holders) {
    const installation = await ofHolder(
      () => loadInstalledApp(em, secretBox, tenantId, appId),
      named,
      tenantId,
      appId,
      log,
    );
    if (!installation) continue;
    const news = verify(installation);
    if (news && news.mandateRef === mandateRef) return { tenantId, news, under: { installation } };
    readable.push({ tenantId, installation });
  }
  // Then the secrets replaced since, once no holder's current one verified it: a holder's old key
  // (another's current one, say) does not keep the news from the holder whose key it is now.
  const app = findApp(appId);
  if (!app || !secretIsAccount(app)) return undefined;
  for (const { tenantId, installation } of readable) {
    const ended = await ofHolder(
      () => endedUnderRetired(em, secretBox, appId, tenantId, mandateRef, installation, log, verify),
      named,
      tenantId,
      appId,
      log,
    );
    if (ended) return ended;
  }
  return undefined;
}

/**
 * What `read` finds of a mandate's holder, whose credentials (or replaced secrets) may not open. The
 * tenant named is the only one that can sign the news: unreadable, the callback is ours to take later
 * (503), as a payment's is. Unnamed, such a tenant is passed over (its callbacks cannot verify anyway).
 */
async function ofHolder<T>(
  read: () => Promise<T>,
  named: string | undefined,
  tenantId: string,
  appId: string,
  log: { error: (obj: object, msg: string) => void },
): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (!named && err instanceof SecretOpenError) return undefined;
    throw unverifiableNow(err, tenantId, appId, log);
  }
}

/** Who a mandate's news is from, and which of its instruments it is for. */
interface MandateSigner {
  tenantId: string;
  news: MandateNews;
  /** The secret that verified it (a replaced one: as in its time), whose instruments it is for (`madeUnder`). */
  under: VerifiedUnder;
}

/**
 * Mandate news the current secret does not verify, verified by a replaced value of it still in time:
 * taken only as the end (cancelled, expired) of a mandate the tenant made under that value (`madeUnder`),
 * where the secret is the account (`secretIsAccount`). A mandate made at a merchant account the
 * tenant has left ends there, and its end comes signed with that account's key; a replaced key that
 * leaked starts no debit (a confirmation is refused) and ends no mandate made under another.
 */
async function endedUnderRetired(
  em: EntityManager,
  secretBox: SecretBox,
  appId: string,
  tenantId: string,
  mandateRef: string,
  installation: InstalledApp,
  log: { info: (obj: object, msg: string) => void },
  verify: (installation: InstalledApp) => MandateNews | undefined,
): Promise<MandateSigner | undefined> {
  for (const then of await replacedInTime(em, secretBox, appId, tenantId, installation)) {
    const news = verify(then.installation);
    if (news?.mandateRef !== mandateRef || !mandateEnded(news.status)) continue;
    const held = await em.find(PaymentInstrument, heldBy(tenantId, appId, mandateRef));
    if (!held.some((instrument) => madeUnder(secretBox, appId, instrument, then))) continue;
    log.info(
      { tenantId, appId, mandateRef, status: news.status, replacedAt: then.to.toISOString() },
      'a mandate’s end verified by a callback secret replaced since, for a mandate made under it',
    );
    return { tenantId, news, under: then };
  }
  return undefined;
}

/** The tenant's instruments holding the mandate. */
function heldBy(tenantId: string, appId: string, mandateRef: string) {
  return { tenantId, appId, mandateRef };
}

/**
 * Whether the instrument was made under the callback secret that verified its mandate's news, where
 * the secret is the account (`secretIsAccount`; a connector's signing secret is rotated on the same
 * account, whose mandates go on: its current one speaks for all of them): by the digest it keeps of
 * the value its form was exchanged under (whenever we stored it: the payment page may exchange a form
 * under credentials read a minute before a change). One stored before instruments kept it: for a
 * replaced value, stored in its time; for the current one, any. A digest that does not open is ours
 * to fix (a SecretOpenError: 503, sent again), never a forgery.
 */
function madeUnder(secretBox: SecretBox, appId: string, instrument: PaymentInstrument, under: VerifiedUnder): boolean {
  const app = findApp(appId);
  const current = !('from' in under);
  if (!app || (current && !secretIsAccount(app))) return true;
  if (instrument.madeUnderCiphertext === null) {
    return current || (instrument.createdAt >= under.from && instrument.createdAt < under.to);
  }
  const kept = secretBox.open(instrument.madeUnderCiphertext, sealedContext('payment_instrument', instrument.id));
  return kept === madeUnderDigest(app, under.installation, instrument.id);
}
