import type { MikroORM } from '@mikro-orm/postgresql';
import { cachedGauge } from '../observability/metrics.js';

/**
 * What is coming and what is behind, across tenants, read from the read model when scraped (one
 * range of payment_instruction_unpaid_index each): instructions to be charged within the window
 * (by charge date, the due date moved by business days), and those LATE.
 */
export function registerInstructionGauges(orm: MikroORM): void {
  cachedGauge({
    name: 'payment_instructions_due',
    help: 'Instructions still to be paid whose charge date falls within the window from now (overdue ones included)',
    labelNames: ['window'] as const,
    read: async () => {
      const [row] = await orm.em.getConnection().execute<{ hour: string; day: string }[]>(
        `select count(*) filter (where coalesce(charge_at, due_at) < now() + interval '1 hour') as hour,
                count(*) as day
         from payment_instruction
         where status in ('PENDING', 'OPEN') and coalesce(charge_at, due_at) < now() + interval '24 hours'`,
      );
      return [
        { labels: { window: '1h' }, value: Number(row.hour) },
        { labels: { window: '24h' }, value: Number(row.day) },
      ];
    },
  });
  cachedGauge({
    name: 'payment_instructions_late',
    help: 'Instructions LATE now: declined, unanswered or waiting for an instrument, still to be paid',
    read: async () => {
      const [row] = await orm.em
        .getConnection()
        .execute<{ late: string }[]>(`select count(*) as late from payment_instruction where status = 'LATE'`);
      return [{ value: Number(row.late) }];
    },
  });
}
