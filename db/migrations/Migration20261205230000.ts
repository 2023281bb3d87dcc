import { createHash } from 'node:crypto';
import { Migration } from '@mikro-orm/migrations';

/**
 * Webhook endpoints' audit entries written before their URLs were audited as an origin and a digest
 * (87cccb3) hold the whole URL, whose path, query or credentials may hold the receiver's token, for
 * as long as the audit log is kept. Each gets what is written now (webhooks/http/presenter.ts,
 * `auditedUrl`, repeated here so that this migration does the same whatever that code becomes). A
 * URL that does not parse keeps only its digest: no part of it is kept in the clear.
 */
export class Migration20261205230000 extends Migration {
  override async up(): Promise<void> {
    const entries = (await this.execute(
      `select id, details->>'url' as url from audit_entry
        where action in ('webhook-endpoint.create', 'webhook-endpoint.update', 'webhook-endpoint.delete')
          and jsonb_typeof(details->'url') = 'string'`,
    )) as { id: string; url: string }[];
    for (const { id, url } of entries) {
      await this.execute(`update audit_entry set details = jsonb_set(details, '{url}', ?::jsonb) where id = ?`, [
        JSON.stringify(audited(url)),
        id,
      ]);
    }
  }

  override async down(): Promise<void> {
    // The URLs are gone, on purpose.
  }
}

function audited(url: string): { origin?: string; sha256: string } {
  const sha256 = createHash('sha256').update(url).digest('hex');
  try {
    return { origin: new URL(url).origin, sha256 };
  } catch {
    return { sha256 };
  }
}
