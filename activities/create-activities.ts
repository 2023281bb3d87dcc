import type { MikroORM } from '@mikro-orm/postgresql';
import type { AppConnector } from '../apps/app-connector.js';
import { createExecutePayment } from './execute-payment.js';
import type { OrderActivities } from './order-activities.js';
import { createProjectOrderState } from './project-order-state.js';

export interface ActivityDependencies {
  orm: MikroORM;
  apps: Map<string, AppConnector>;
}

export function createActivities({ orm, apps }: ActivityDependencies): OrderActivities {
  return {
    projectOrderState: createProjectOrderState(orm),
    executePayment: createExecutePayment(apps),
  };
}
