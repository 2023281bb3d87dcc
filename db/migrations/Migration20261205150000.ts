import { Migration } from '@mikro-orm/migrations';

/**
 * Orders that ended before their workflows projected `open_until` (Migration20261205110000) read as
 * closed, so their customer could be deleted while a return or chargeback could still come and be
 * collected again. Each gets it as its workflow keeps it (OrderEntity.staysOpenUntil), from what the
 * read model holds: the latest of each collection's settlement plus its app's reversal window (as the
 * app catalog has them today), and, unless the order was cancelled, of each failure plus the order's
 * arrears expiry (a run from before arrears expired kept no such wait: its customer is kept a little
 * longer, never deleted early). Orders whose time has passed are left as they are. Days are of 24
 * hours, as the workflow counts them: a day interval would follow the session's time zone, and end an
 * hour early across a change to summer time.
 */
export class Migration20261205150000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      update payment_order o set open_until = open.until
      from (
        select i.order_id, max(case
            when i.status = 'SETTLED' and i.direction = 'DEBIT' then i.settled_at + w.days * interval '24 hours'
            when i.status = 'FAILED' and ended.status <> 'CANCELLED'
              then i.failed_at + coalesce(ended.arrears_expiry_days, 30) * interval '24 hours'
          end) as until
        from payment_order ended
        join payment_instruction i on i.order_id = ended.id
        left join (values ('SANDBOX_CARD', 120), ('SANDBOX_BANK', 56), ('HTTP_CONNECTOR', 120)) w (app_id, days)
          on w.app_id = i.app_id
        where ended.status <> 'ACTIVE' and ended.open_until is null
        group by i.order_id
      ) open
      where o.id = open.order_id and open.until > now();`);
  }

  override async down(): Promise<void> {
    // What it set cannot be told from what workflows projected since: both stay.
  }
}
