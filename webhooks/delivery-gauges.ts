import type { MikroORM } from '@mikro-orm/postgresql';
import { cachedGauge } from '../observability/metrics.js';

/** The webhook backlog across tenants, read when scraped: deliveries not yet delivered nor given up. */
export function registerDeliveryGauges(orm: MikroORM): void {
  cachedGauge({
    name: 'webhook_deliveries_pending',
    help: 'Webhook deliveries still being tried',
    read: async () => {
      const [row] = await orm.em
        .getConnection()
        .execute<{ pending: string }[]>(`select count(*) as pending from webhook_delivery where status = 'PENDING'`);
      return [{ value: Number(row.pending) }];
    },
  });
}
