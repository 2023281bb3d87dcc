/** The key a request acts as, as stored now (not as it was when its token was issued). */
export interface Principal {
  publicKey: string;
  accountId: string;
  /** Null for an account key. */
  tenantId: string | null;
  roles: string[];
}
