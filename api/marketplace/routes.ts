import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import type { z } from 'zod';
import { APP_CATALOG, findApp, secretFields, type AppDefinition } from '../../domain/app-catalog.js';
import { AppInstallation, PaymentInstruction } from '../../db/entities/index.js';
import {
  openInstallationSecrets,
  openSecretTimes,
  sealInstallationSecrets,
  sealSecretTimes,
} from '../../db/installed-apps.js';
import type { SecretBox } from '../../db/secret-box.js';
import { LIVE_INSTRUCTION_STATUSES } from '../../domain/instruction-status.js';
import { UNKNOWN_OUTCOME } from '../../domain/payment-outcome.js';
import { keyScopeMoved } from '../../domain/key-scope.js';
import { replacedValues, timesAfterChange } from '../../domain/retired-secrets.js';
import { auditedUrl, outboundUrlProblem, type OutboundUrlPolicy } from '../../domain/outbound-url.js';
import { recordAudit } from '../audit/record-audit.js';
import { PageQuerySchema } from '../http/common-schemas.js';
import { findPage } from '../http/pagination.js';
import { ApiError } from '../http/problem.js';
import type { RouteTable } from '../http/route-table.js';
import { validate } from '../http/validate.js';
import { schemesUsingApp } from '../schemes/scheme-store.js';
import { presentApp, presentInstallation } from './presenter.js';
import {
  AppIdParamsSchema,
  ConfigurationBodySchema,
  ReconfigurationBodySchema,
  InstalledAppListSchema,
  InstalledAppSchema,
  MarketplaceAppListSchema,
  MarketplaceAppSchema,
} from './schemas.js';

export interface MarketplaceRouteDeps {
  secretBox: SecretBox;
  outboundUrls: OutboundUrlPolicy;
  /** What is wrong with a URL once its host is looked up (apps/outbound-guard.ts), as at connect time; undefined: nothing. */
  resolvedUrlProblem: (url: string, policy: OutboundUrlPolicy) => Promise<string | undefined>;
}

/** A provider's URL refused, as its configuration's field. */
function urlNotAllowed(problem: string): ApiError {
  return new ApiError(400, 'validation_failed', '1 field failed validation', [
    { path: 'configuration.url', code: 'url_not_allowed', message: problem },
  ]);
}

function catalogApp(appId: string): AppDefinition {
  const app = findApp(appId);
  if (!app) throw new ApiError(404, 'app_not_found', `no app ${appId} in the marketplace`);
  return app;
}

/**
 * The tenant's installation of an app; `lockMode` when the request changes or removes it: schemes
 * naming the app read installations under a share lock (checkRules), so a scheme written at the same
 * time as the app's uninstall waits for it, and is refused, or is seen by it.
 */
async function findInstallation(
  em: EntityManager,
  tenantId: string,
  appId: string,
  lockMode?: LockMode,
): Promise<AppInstallation> {
  const installation = await em.findOne(AppInstallation, { tenantId, appId }, { lockMode });
  if (!installation) throw new ApiError(404, 'app_not_installed', `${appId} is not installed`);
  return installation;
}

/** Refunds through the app still under way: each is asked about through it until its provider answers. */
async function pendingRefundsThrough(em: EntityManager, tenantId: string, appId: string): Promise<number> {
  // A refund from before it kept its app goes through its instruction's.
  const [{ count }] = await em.getConnection().execute<{ count: number }[]>(
    `select count(*)::int as count from payment_refund r join payment_instruction i on i.id = r.instruction_id
      where r.tenant_id = ? and r.status = 'PENDING' and i.tenant_id = ? and coalesce(r.app_id, i.app_id) = ?`,
    [tenantId, tenantId, appId],
    'all',
    em.getTransactionContext(),
  );
  return count;
}

/**
 * Refuses a change of where the app's payments' idempotency keys are known (`moved`: fields of its
 * `keyScope`, a connector's URL or a sandbox merchant's key) while a payment or refund through it
 * may be under way or of unknown outcome: asked again under its key of a provider that never saw
 * that key, it would be taken a second time. That is an instruction being paid, or late with its
 * outcome unknown; one whose next call is due within KEYS_OUT_AHEAD_MINUTES (the read model shows a
 * call only once it is answered or some seconds in, and a worker may use the installation it read a
 * minute before); and a refund under way. One only scheduled further ahead, or waiting on a dunning
 * retry (its last key answered), has nothing out.
 */
async function refuseWhileKeysOut(em: EntityManager, tenantId: string, appId: string, moved: string[]): Promise<void> {
  const [{ count: calling }] = await em.getConnection().execute<{ count: number }[]>(
    `select count(*)::int as count from payment_instruction
      where tenant_id = ? and app_id = ? and status in ('PENDING', 'OPEN', 'PROCESSING', 'LATE')
        and (status = 'PROCESSING'
          or (status = 'LATE' and (failure_code = ? or starts_with(failure_code, ?)))
          or coalesce(next_action_at, charge_at, due_at) < now() + make_interval(mins => ?))`,
    [tenantId, appId, UNKNOWN_OUTCOME.unanswered, UNKNOWN_OUTCOME.refusedPrefix, KEYS_OUT_AHEAD_MINUTES],
    'all',
    em.getTransactionContext(),
  );
  const refunds = await pendingRefundsThrough(em, tenantId, appId);
  if (calling === 0 && refunds === 0) return;
  const message =
    `cannot change while ${calling} instruction(s) through ${appId} are being paid, of unknown outcome, overdue or due within ` +
    `${KEYS_OUT_AHEAD_MINUTES} minutes and ${refunds} refund(s) through it are under way: one of unknown outcome would ` +
    'be asked again, under its key, of a provider that never saw that key, and taken twice; let them finish (or ' +
    'resolve them), then change it';
  throw new ApiError(
    409,
    'app_in_use',
    `${moved.join(' and ')} ${message}`,
    moved.map((field) => ({ path: `configuration.${field}`, code: 'payments_under_way', message })),
  );
}

/** How far ahead a call due makes its app's key scope unchangeable (refuseWhileKeysOut). */
const KEYS_OUT_AHEAD_MINUTES = 10;

/**
 * Marketplace (ARCHITECTURE.md, "Apps"): the catalog of apps the platform ships, and the tenant's
 * installations of them. One installation per app and tenant; secret settings are sealed at rest
 * and never answered once set.
 */
export function addMarketplaceRoutes(
  routes: RouteTable,
  { secretBox, outboundUrls, resolvedUrlProblem }: MarketplaceRouteDeps,
): void {
  /** Validates a configuration against the app's schema; `keep` fills in secrets the caller left out. */
  function checkConfiguration(app: AppDefinition, given: Record<string, unknown>, keep: Record<string, string> = {}) {
    const configuration = validate<z.ZodType<Record<string, unknown>>>(
      app.configuration,
      { ...keep, ...given },
      'configuration',
    );
    if (typeof configuration.url === 'string') {
      const problem = outboundUrlProblem(configuration.url, outboundUrls);
      if (problem) throw urlNotAllowed(problem);
    }
    const secretNames = secretFields(app);
    const secrets: Record<string, string> = {};
    const plain: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(configuration)) {
      if (secretNames.includes(field)) secrets[field] = value as string;
      else plain[field] = value;
    }
    return { plain, secrets };
  }

  /**
   * A provider's URL whose host resolves to an address we do not call (private, link-local, metadata),
   * or to none, is refused when configured as it would be at connect time; asked before the
   * transaction opens (a name's lookup may take a while).
   */
  async function checkResolvedUrl(appId: string, configuration: Record<string, unknown>): Promise<void> {
    const { url } = configuration;
    // Only an app configured with a URL, and a URL its schema takes (on a change, the secrets left out
    // are kept: the body alone need not pass); anything else is answered by the handler.
    const app = findApp(appId);
    if (!app || !('url' in app.configuration.shape) || typeof url !== 'string') return;
    if (!app.configuration.partial().safeParse({ url }).success) return;
    if (outboundUrlProblem(url, outboundUrls) !== undefined) return;
    const problem = await resolvedUrlProblem(url, outboundUrls);
    if (problem) throw urlNotAllowed(problem);
  }

  routes.add({
    method: 'get',
    path: '/marketplace/apps',
    scope: 'tenant',
    roles: ['tenant-app-read'],
    summary: 'The apps of the marketplace',
    tags: ['Marketplace'],
    responses: { 200: { description: 'Every app the platform ships', schema: MarketplaceAppListSchema } },
    handler: () => ({ status: 200, body: { items: APP_CATALOG.map(presentApp), nextCursor: null } }),
  });

  routes.add({
    method: 'get',
    path: '/marketplace/apps/:appId',
    scope: 'tenant',
    roles: ['tenant-app-read'],
    summary: 'One app of the marketplace, with the schema of its configuration',
    tags: ['Marketplace'],
    params: AppIdParamsSchema,
    responses: { 200: { description: 'The app', schema: MarketplaceAppSchema } },
    handler: ({ params }) => ({ status: 200, body: presentApp(catalogApp(params.appId)) }),
  });

  routes.add({
    method: 'post',
    path: '/marketplace/apps/:appId/install',
    scope: 'tenant',
    roles: ['tenant-app-write'],
    summary: 'Install an app with its configuration',
    description:
      'The configuration is checked against the app’s configurationSchema. Secret settings are sealed and never shown again.',
    tags: ['Marketplace'],
    params: AppIdParamsSchema,
    body: ConfigurationBodySchema,
    responses: { 201: { description: 'The installation', schema: InstalledAppSchema } },
    problems: [409],
    precheck: ({ params, body }) => checkResolvedUrl(params.appId, body.configuration),
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      const app = catalogApp(params.appId);
      const { plain, secrets } = checkConfiguration(app, body.configuration);
      if (await em.findOne(AppInstallation, { tenantId, appId: app.appId })) {
        throw new ApiError(
          409,
          'app_already_installed',
          `${app.appId} is installed already; change its configuration with PUT`,
        );
      }
      const id = randomUUID();
      const installation = em.create(AppInstallation, {
        id,
        tenantId,
        appId: app.appId,
        configuration: plain,
        secretsCiphertext: sealInstallationSecrets(secretBox, id, secrets),
        secretsSet: Object.keys(secrets),
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      recordAudit(em, principal, {
        action: 'app.install',
        targetType: 'app',
        targetId: app.appId,
        details: { configuration: auditedConfiguration(plain), secretsSet: Object.keys(secrets) },
      });
      return { status: 201, body: presentInstallation(secretBox, app, installation) };
    },
  });

  routes.add({
    method: 'get',
    path: '/marketplace/installed',
    scope: 'tenant',
    roles: ['tenant-app-read'],
    summary: 'The tenant’s installed apps, newest first',
    tags: ['Marketplace'],
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of installations', schema: InstalledAppListSchema } },
    handler: async ({ query, em, context: { tenantId } }) => {
      const page = await findPage(em, AppInstallation, { tenantId }, query, 'id');
      return {
        status: 200,
        body: {
          items: page.items.map((i) => presentInstallation(secretBox, catalogApp(i.appId), i)),
          nextCursor: page.nextCursor,
        },
      };
    },
  });

  routes.add({
    method: 'get',
    path: '/marketplace/installed/:appId',
    scope: 'tenant',
    roles: ['tenant-app-read'],
    summary: 'One installed app',
    tags: ['Marketplace'],
    params: AppIdParamsSchema,
    responses: { 200: { description: 'The installation', schema: InstalledAppSchema } },
    handler: async ({ params, em, context: { tenantId } }) => {
      const installation = await findInstallation(em, tenantId, params.appId);
      return { status: 200, body: presentInstallation(secretBox, catalogApp(installation.appId), installation) };
    },
  });

  routes.add({
    method: 'put',
    path: '/marketplace/installed/:appId/configuration',
    scope: 'tenant',
    roles: ['tenant-app-write'],
    summary: 'Replace an installed app’s configuration',
    description:
      'Plain settings are replaced by those given. A secret setting left out keeps its value; one given replaces it. ' +
      'A replaced callback secret (a sandbox apiKey, a connector’s signingSecret) still verifies returns and ' +
      'chargebacks of collections settled while it was current (never collected again), and a sandbox apiKey the end of a mandate made ' +
      'under it, for the app’s reversal window and 7 days more, and nothing else; ' +
      '`replacedSecrets: revoke` ends that for every replaced secret (one that leaked).',
    tags: ['Marketplace'],
    params: AppIdParamsSchema,
    body: ReconfigurationBodySchema,
    responses: { 200: { description: 'The installation', schema: InstalledAppSchema } },
    precheck: ({ params, body }) => checkResolvedUrl(params.appId, body.configuration),
    handler: async ({ params, body, em, context: { tenantId, principal } }) => {
      // Locked: an uninstall at the same time takes it first, or waits (and a configure never writes a row gone).
      const installation = await findInstallation(em, tenantId, params.appId, LockMode.PESSIMISTIC_WRITE);
      const app = catalogApp(installation.appId);
      const kept = openInstallationSecrets(secretBox, installation);
      const { plain, secrets } = checkConfiguration(app, body.configuration, kept);
      const [before, after] = [
        { ...installation.configuration, ...kept },
        { ...plain, ...secrets },
      ];
      const moved = keyScopeMoved(app.keyScope, before, after);
      const now = new Date();
      const dates = { installedAt: installation.createdAt, keyScopeChangedAt: installation.keyScopeChangedAt };
      if (moved.length > 0) {
        await refuseWhileKeysOut(em, tenantId, app.appId, moved);
        installation.keyScopeChangedAt = now;
      }
      // The callback secret replaced still verifies chargebacks of payments settled under it.
      const revoke = body.replacedSecrets === 'revoke';
      const times = timesAfterChange(app, kept, secrets, openSecretTimes(secretBox, installation), now, dates, revoke);
      installation.retiredSecretsCiphertext = sealSecretTimes(secretBox, installation.id, times);
      installation.configuration = plain;
      installation.secretsCiphertext = sealInstallationSecrets(secretBox, installation.id, secrets);
      installation.secretsSet = Object.keys(secrets);
      installation.updatedAt = new Date();
      const replaced = secretFields(app).filter((field) => field in body.configuration);
      recordAudit(em, principal, {
        action: 'app.configure',
        targetType: 'app',
        targetId: app.appId,
        details: {
          configuration: auditedConfiguration(plain),
          secretsReplaced: replaced,
          replacedSecretsKept: replacedValues(times).length,
          ...(revoke ? { replacedSecretsRevoked: true } : {}),
        },
      });
      await em.flush();
      return { status: 200, body: presentInstallation(secretBox, app, installation) };
    },
  });

  routes.add({
    method: 'post',
    path: '/marketplace/installed/:appId/uninstall',
    scope: 'tenant',
    roles: ['tenant-app-write'],
    summary: 'Uninstall an app',
    description:
      'Refused (409) while an instruction that is not final pays through the app, a collection through it may still be ' +
      'refunded, returned or charged back (its order running, or open for its reversal windows), a failed one retried, a ' +
      'refund through it is under way, or a scheme offers it.',
    tags: ['Marketplace'],
    params: AppIdParamsSchema,
    responses: { 204: { description: 'Uninstalled; its configuration and secrets are deleted' } },
    problems: [409],
    handler: async ({ params, em, context: { tenantId, principal } }) => {
      const installation = await findInstallation(em, tenantId, params.appId, LockMode.PESSIMISTIC_WRITE);
      const liveInstructions = await em.count(PaymentInstruction, {
        tenantId,
        appId: installation.appId,
        status: { $in: [...LIVE_INSTRUCTION_STATUSES] },
      });
      const pendingRefunds = await pendingRefundsThrough(em, tenantId, installation.appId);
      // A collection through it that can still be refunded, returned or charged back (its order
      // running, or ended but open for its reversal windows), or a failed one that can still be
      // retried: a return's or chargeback's callback is checked with the app's key, and refunds and
      // retries go through the app. Without it a chargeback would be refused and the payment left as
      // collected. Open by the database's clock, one for every API host (as a customer's deletion), and a
      // day past `open_until`: the workflow closes when its timer fires on a worker, which may be late.
      const [{ count: reversible }] = await em.getConnection().execute<{ count: number }[]>(
        `select count(*)::int as count from payment_instruction i
           join payment_order o on o.id = i.order_id and o.tenant_id = i.tenant_id
          where i.tenant_id = ? and i.app_id = ? and (o.status = 'ACTIVE' or o.open_until > now() - interval '1 day')
            and ((i.status = 'SETTLED' and i.direction = 'DEBIT') or (i.status = 'FAILED' and o.status <> 'CANCELLED'))`,
        [tenantId, installation.appId],
        'all',
        em.getTransactionContext(),
      );
      const schemes = await schemesUsingApp(em, tenantId, installation.appId);
      if (liveInstructions > 0 || reversible > 0 || pendingRefunds > 0 || schemes.length > 0) {
        throw new ApiError(
          409,
          'app_in_use',
          `${installation.appId} is in use by ${liveInstructions} instruction(s) not yet final, ` +
            `${reversible} payment(s) in orders still open that may be refunded, taken back or retried, ` +
            `${pendingRefunds} refund(s) under way and ${schemes.length} scheme(s); ` +
            'let the instructions and refunds finish (or cancel the instructions), their orders close, and take the app out of the schemes first',
          schemes.map((scheme) => ({
            path: `schemes.${scheme.id}`,
            code: 'scheme_uses_app',
            message: `scheme "${scheme.name}" offers this app`,
          })),
        );
      }
      em.remove(installation);
      recordAudit(em, principal, { action: 'app.uninstall', targetType: 'app', targetId: installation.appId });
      return { status: 204 };
    },
  });
}

/** An installation's configuration as the audit log keeps it: a URL (HTTP_CONNECTOR's) as its origin and digest. */
function auditedConfiguration(configuration: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(configuration).map(([field, value]) => [
      field,
      typeof value === 'string' && /^https?:\/\//i.test(value) && URL.canParse(value) ? auditedUrl(value) : value,
    ]),
  );
}
