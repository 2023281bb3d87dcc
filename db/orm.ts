import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig, type DatabaseOptions } from './orm-config.js';

/**
 * Connects and, with `migrate`, applies every committed migration not yet run. One process per
 * deployment migrates (the API, or `npm run migrate`): the migrator takes no lock of its own.
 */
export async function openDatabase(
  options: DatabaseOptions & { migrate?: boolean; log?: (line: string) => void },
): Promise<MikroORM> {
  const orm = await MikroORM.init(ormConfig(options));
  if (options.migrate) {
    const applied = await orm.getMigrator().up();
    const log = options.log ?? ((line: string) => console.error(line));
    if (applied.length > 0) log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
  }
  return orm;
}
