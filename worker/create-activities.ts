import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import got from 'got';
import type { AppConnector } from '../apps/app-connector.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';
import type { OutboundUrlPolicy } from '../domain/outbound-url.js';
import { createPaymentActivities } from '../orders/activities/payment-calls.js';
import { InstallationCache } from '../orders/activities/installation-cache.js';
import type { OrderActivities } from '../orders/contract/activities.js';
import { createProjectOrder } from '../orders/activities/project-order.js';
import { createWebhookActivities, type WebhookActivities } from '../webhooks/attempt-delivery.js';

export interface ActivityDependencies {
  orm: MikroORM;
  /** Webhook tries' own connections (default: orm's), so an endpoint's traffic never takes a payment's connection. */
  webhookOrm?: MikroORM;
  apps: Map<string, AppConnector>;
  /** Opens the tenants' app credentials and webhook secrets. */
  masterKeys: MasterKeys;
  /** Starts webhook deliveries once their events are recorded; without it the dispatcher does. */
  temporal?: Client;
  /** Where webhooks may go (loopback in local development). */
  outboundUrls?: OutboundUrlPolicy;
}

export function createActivities({
  orm,
  webhookOrm = orm,
  apps,
  masterKeys,
  temporal,
  outboundUrls = { allowLoopbackHttp: false },
}: ActivityDependencies): OrderActivities & WebhookActivities {
  const box = SecretBox.fromMasterKeys(masterKeys);
  const installations = new InstallationCache(orm, box);
  return {
    projectOrder: createProjectOrder(orm, temporal),
    ...createPaymentActivities({ apps, installations }),
    ...createWebhookActivities({ orm: webhookOrm, box, http: got, outboundUrls }),
  };
}
