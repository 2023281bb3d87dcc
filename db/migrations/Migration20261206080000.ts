import { Migration } from '@mikro-orm/migrations';

/**
 * Provider callbacks stored before only their checked result was kept hold the body as the provider
 * sent it, with whatever else it put there (the token it charged, what it saw of the card). Nothing
 * reads it; each keeps what its own columns already say of it. A row written since holds
 * `{ kind, result }` and is left as it is.
 */
export class Migration20261206080000 extends Migration {
  override async up(): Promise<void> {
    await this.execute(
      `update provider_callback set payload = jsonb_build_object('providerRef', provider_ref, 'status', status)
        where not (payload ? 'kind')`,
    );
  }

  override async down(): Promise<void> {
    // The bodies are gone, on purpose.
  }
}
