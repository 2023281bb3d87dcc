/** Roles (ARCHITECTURE.md, "Authentication"). Account keys carry account roles; tenant keys carry tenant roles. */
export const ACCOUNT_ROLES = ['account-admin', 'account-tenant-read', 'account-tenant-write'] as const;

const TENANT_RESOURCES = [
  'app',
  'collect-scheme',
  'payout-scheme',
  'voucher-group',
  'webhook',
  'order',
  'refund',
  'customer',
  'reconciliation',
] as const;
export const TENANT_ROLES = [
  'tenant-admin',
  ...TENANT_RESOURCES.flatMap((resource) => [`tenant-${resource}-read`, `tenant-${resource}-write`] as const),
] as const;

export type AccountRole = (typeof ACCOUNT_ROLES)[number];
export type TenantRole = (typeof TENANT_ROLES)[number];
export type Role = AccountRole | TenantRole;

/**
 * Whether a key holding `held` may use a route that needs `required`. The scope's admin role holds
 * every role of its scope, and `-write` holds the matching `-read`.
 */
export function grants(held: readonly string[], required: Role): boolean {
  const admin = required.startsWith('account-') ? 'account-admin' : 'tenant-admin';
  if (held.includes(required) || held.includes(admin)) return true;
  return required.endsWith('-read') && held.includes(required.replace(/-read$/, '-write'));
}
