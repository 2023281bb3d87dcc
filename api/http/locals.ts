import type { Principal } from '../auth/principal.js';

/** What the middleware chain leaves on res.locals for the steps after it. */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express declares Locals in this namespace
  namespace Express {
    interface Locals {
      /** Set by requestId, first of all. */
      requestId: string;
      /** Set by authenticate. */
      principal?: Principal;
      /** Set by the scope guard: the account, and for tenant routes the tenant, the call acts for. */
      context?: { principal: Principal; accountId: string; tenantId?: string };
      /** Set by the route table: the route as declared, for metrics (an error leaves the router before they are counted). */
      route?: string;
    }
  }
}

export {};
