// Writes a migration for the difference between the entities and the database in DATABASE_URL.
import { loadConfig } from '../config.js';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig } from './orm-config.js';

const config = loadConfig();
const url = config.databaseUrl;
if (!url) throw new Error('set DATABASE_URL to an up-to-date database to diff against');
const orm = await MikroORM.init(ormConfig({ url, poolSize: 1 }));
const migrator = orm.getMigrator();
await migrator.up();
const result = await migrator.createMigration(undefined, false, process.argv.includes('--initial'));
console.log(result.fileName ? `wrote ${result.fileName}` : 'no changes');
await orm.close();
