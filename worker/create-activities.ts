import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import got from 'got';
import type { AppConnector } from '../apps/app-connector.js';
import { SecretBox, type MasterKeys } from '../db/secret-box.js';
import type { OutboundUrlPolicy } from '../domain/outbound-url.js';
import { createOrderActivities } from '../orders/activities/create-order-activities.js';
import type { OrderActivities } from '../orders/contract/activities.js';
import { createWebhookActivities } from '../webhooks/attempt-delivery.js';
import type { WebhookActivities } from '../webhooks/contract.js';
import type { EndpointPace } from '../webhooks/endpoint-pace.js';

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
  /** How fast webhook endpoints answer (default: each unproven, slow from SLOW_WEBHOOK_TRY_MS). */
  webhookPace?: EndpointPace;
}

/** Every activity of the process's workers: the orders' and the webhooks'. */
export function createActivities({
  orm,
  webhookOrm = orm,
  apps,
  masterKeys,
  temporal,
  outboundUrls = { allowLoopbackHttp: false },
  webhookPace,
}: ActivityDependencies): OrderActivities & WebhookActivities {
  const box = SecretBox.fromMasterKeys(masterKeys);
  return {
    ...createOrderActivities({ orm, apps, box, temporal }),
    ...createWebhookActivities({ orm: webhookOrm, box, http: got, outboundUrls, temporal, pace: webhookPace }),
  };
}
