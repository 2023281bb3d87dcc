import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { findApp, listsAny } from '../../domain/app-catalog.js';
import { AppInstallation, Scheme, SchemeVersion, VoucherGroup } from '../../db/entities/index.js';
import type { SchemeKind, SchemeRule } from '../../domain/scheme.js';
import { ApiError, type FieldError } from '../http/problem.js';

/**
 * The tenant's live (not deleted) scheme of this kind, or a 404; `lockMode` when the request edits or
 * deletes it, so that an edit and a delete go one after the other (the second then sees the first).
 */
export async function findScheme(
  em: EntityManager,
  tenantId: string,
  kind: SchemeKind,
  schemeId: string,
  lockMode?: LockMode,
): Promise<Scheme> {
  const scheme = await em.findOne(Scheme, { id: schemeId, tenantId, kind, deletedAt: null }, { lockMode });
  if (!scheme) throw new ApiError(404, 'scheme_not_found', `no ${kind} scheme ${schemeId}`);
  return scheme;
}

export async function currentRules(em: EntityManager, scheme: Scheme): Promise<SchemeRule[]> {
  return (await em.findOneOrFail(SchemeVersion, { schemeId: scheme.id, version: scheme.currentVersion })).rules;
}

/** Live schemes whose current version offers `appId`: they stop the app being uninstalled. */
export function schemesUsingApp(
  em: EntityManager,
  tenantId: string,
  appId: string,
): Promise<Pick<Scheme, 'id' | 'name'>[]> {
  return schemesWhoseRulesContain(em, tenantId, [{ options: [{ appId }] }]);
}

/** Live schemes whose current version draws on the voucher group: it cannot be deleted meanwhile. */
export function schemesUsingVoucherGroup(
  em: EntityManager,
  tenantId: string,
  voucherGroupId: string,
): Promise<Pick<Scheme, 'id' | 'name'>[]> {
  return schemesWhoseRulesContain(em, tenantId, [{ voucherGroupIds: [voucherGroupId] }]);
}

async function schemesWhoseRulesContain(
  em: EntityManager,
  tenantId: string,
  fragment: unknown,
): Promise<Pick<Scheme, 'id' | 'name'>[]> {
  return em.getConnection().execute(
    `select s.id, s.name from scheme s
     join scheme_version v on v.scheme_id = s.id and v.version = s.current_version
     where s.tenant_id = ? and s.deleted_at is null and v.rules @> ?::jsonb
     order by s.created_at`,
    [tenantId, JSON.stringify(fragment)],
    'all',
    em.getTransactionContext(),
  );
}

/**
 * Checks rules against what the tenant has: every option's app installed, able to carry the
 * scheme's direction and each method named; every voucher group the tenant's. All problems at once.
 */
export async function checkRules(
  em: EntityManager,
  tenantId: string,
  kind: SchemeKind,
  rules: SchemeRule[],
): Promise<void> {
  // Under a share lock, to the request's commit: an app's uninstall, or a group's delete, at the same
  // time (each locks its row to write) waits for this scheme and then sees it, or comes first and this
  // scheme is refused. Neither can miss the other.
  const shared = { lockMode: LockMode.PESSIMISTIC_READ } as const;
  const installed = new Set(
    (await em.find(AppInstallation, { tenantId }, { fields: ['appId'], ...shared })).map((i) => i.appId),
  );
  const groupIds = [...new Set(rules.flatMap((rule) => rule.voucherGroupIds ?? []))];
  const groups = new Set(
    groupIds.length
      ? (await em.find(VoucherGroup, { tenantId, id: { $in: groupIds } }, { fields: ['id'], ...shared })).map(
          (g) => g.id,
        )
      : [],
  );
  const errors: FieldError[] = [];
  rules.forEach((rule, r) => {
    rule.options.forEach((option, o) => {
      const at = `rules[${r}].options[${o}]`;
      const app = findApp(option.appId);
      if (!app || !installed.has(option.appId)) {
        errors.push({
          path: `${at}.appId`,
          code: 'app_not_installed',
          message: `${option.appId} is not installed (POST /v1/marketplace/apps/{appId}/install)`,
        });
        return;
      }
      if (!app.directions.includes(kind)) {
        errors.push({
          path: `${at}.appId`,
          code: 'app_wrong_direction',
          message: `${option.appId} does not ${kind === 'collect' ? 'collect payments' : 'pay out'}`,
        });
      }
      // A rule naming its currencies or countries offers no app that pays in none of them.
      if (rule.currencies.length > 0 && !listsAny(app.currencies, rule.currencies)) {
        errors.push({
          path: `${at}.appId`,
          code: 'app_wrong_currency',
          message: `${option.appId} pays in none of the rule's currencies (it pays in ${app.currencies.join(', ')})`,
        });
      }
      if (rule.countries.length > 0 && !listsAny(app.countries, rule.countries)) {
        errors.push({
          path: `${at}.appId`,
          code: 'app_wrong_country',
          message: `${option.appId} pays in none of the rule's countries`,
        });
      }
      option.paymentMethods.forEach((method, m) => {
        if (!app.paymentMethods.includes(method)) {
          errors.push({
            path: `${at}.paymentMethods[${m}]`,
            code: 'method_not_offered',
            message: `${option.appId} does not offer ${method}`,
          });
        }
      });
    });
    const offersVouchers = rule.options.some((option) => option.paymentMethods.includes('VOUCHER'));
    if (offersVouchers && (rule.voucherGroupIds ?? []).length === 0) {
      errors.push({
        path: `rules[${r}].voucherGroupIds`,
        code: 'voucher_groups_required',
        message: 'a rule offering VOUCHER names the voucher groups it draws on',
      });
    }
    (rule.voucherGroupIds ?? []).forEach((groupId, g) => {
      if (!groups.has(groupId))
        errors.push({
          path: `rules[${r}].voucherGroupIds[${g}]`,
          code: 'voucher_group_not_found',
          message: `no voucher group ${groupId}`,
        });
    });
  });
  if (errors.length > 0)
    throw new ApiError(
      400,
      'validation_failed',
      `${errors.length} field${errors.length === 1 ? '' : 's'} failed validation`,
      errors,
    );
}
