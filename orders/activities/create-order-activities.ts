import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { AppConnector } from '../../apps/app-connector.js';
import type { SecretBox } from '../../db/secret-box.js';
import { tenantAccounts } from '../../db/tenant-accounts.js';
import { InstrumentStore } from '../../customers/instrument-store.js';
import type { OrderActivities } from '../contract/activities.js';
import { InstallationCache } from './installation-cache.js';
import { keyScopesIn } from './key-scopes.js';
import { createPaymentActivities } from './payment-calls.js';
import { createProjectOrder } from './project-order.js';

export interface OrderActivityDependencies {
  orm: MikroORM;
  apps: Map<string, AppConnector>;
  /** Opens the tenants' app credentials. */
  box: SecretBox;
  /** Starts webhook deliveries once their events are recorded; without it the dispatcher does. */
  temporal?: Client;
}

/** The activities of an order's workflow, from what they need. */
export function createOrderActivities({ orm, apps, box, temporal }: OrderActivityDependencies): OrderActivities {
  return {
    projectOrder: createProjectOrder(orm, temporal),
    ...createPaymentActivities({
      apps,
      installations: new InstallationCache(orm, box),
      keyScopes: keyScopesIn(orm),
      instruments: instrumentsFrom(orm, new InstrumentStore(box)),
      accountOf: tenantAccounts(orm),
    }),
  };
}

/** Stored instruments' tokens, each read on its own short-lived unit of work. */
function instrumentsFrom(orm: MikroORM, store: InstrumentStore) {
  return {
    read: (tenantId: string, instrumentId: string) => store.token(orm.em.fork(), tenantId, instrumentId),
    claim: (tenantId: string, instrumentId: string, idempotencyKey: string) =>
      store.claim(orm.em.fork(), tenantId, instrumentId, idempotencyKey),
  };
}
