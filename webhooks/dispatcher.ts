import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { WebhookDelivery } from '../db/entities/index.js';
import { startDeliveries } from './start-deliveries.js';

/**
 * Starts the workflows of webhook deliveries whose start was lost (the projection that recorded
 * them could not reach Temporal, or died right after committing): the outbox's sweeper.
 */
export class DeliveryDispatcher {
  constructor(
    private readonly orm: MikroORM,
    private readonly client: Client,
    /** How old a delivery without a workflow must be before it counts as lost (its projection may still be starting it). */
    private readonly graceMs = 10_000,
  ) {}

  /** How many deliveries had their workflow started this round. */
  async runOnce(): Promise<number> {
    const lost = await this.orm.em
      .fork()
      .find(
        WebhookDelivery,
        { startedAt: null, createdAt: { $lt: new Date(Date.now() - this.graceMs) } },
        { fields: ['id'], limit: 500, orderBy: { createdAt: 'asc' } },
      );
    if (lost.length === 0) return 0;
    return (
      await startDeliveries(
        this.client,
        this.orm,
        lost.map((d) => d.id),
      )
    ).started.length;
  }
}
