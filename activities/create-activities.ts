import type { MikroORM } from '@mikro-orm/postgresql';
import type { AppConnector } from '../apps/app-connector.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';
import { createPaymentActivities } from './execute-payment.js';
import { InstallationCache } from './installation-cache.js';
import type { OrderActivities } from './order-activities.js';
import { createProjectOrder } from './project-order.js';

export interface ActivityDependencies {
  orm: MikroORM;
  apps: Map<string, AppConnector>;
  /** Opens the tenants' app credentials. */
  masterKeys: MasterKeys;
}

export function createActivities({ orm, apps, masterKeys }: ActivityDependencies): OrderActivities {
  const installations = new InstallationCache(orm, SecretBox.fromMasterKeys(masterKeys));
  return {
    projectOrder: createProjectOrder(orm),
    ...createPaymentActivities({ apps, installations }),
  };
}
