import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig, type DatabaseOptions } from './orm-config.js';

/**
 * Connects and, with `migrate`, applies every committed migration not yet run. One process per
 * deployment migrates (the API, or `npm run migrate`): the migrator takes no lock of its own.
 */
export async function openDatabase(options: DatabaseOptions & { migrate?: boolean }): Promise<MikroORM> {
  const orm = await MikroORM.init(ormConfig(options));
  if (options.migrate) {
    const applied = await orm.getMigrator().up();
    if (applied.length > 0) console.error(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
  }
  return orm;
}
