// `npm run migrate`: applies committed migrations to DATABASE_URL and exits.
import { loadConfig } from '../config.js';
import { openDatabase } from './orm.js';

const config = loadConfig();
const url = config.databaseUrl;
if (!url) throw new Error('DATABASE_URL is required');
const orm = await openDatabase({ url, poolSize: 1, migrate: true });
const executed = await orm.getMigrator().getExecutedMigrations();
console.log(`database is at migration ${executed.at(-1)?.name ?? '(none)'}`);
await orm.close();
