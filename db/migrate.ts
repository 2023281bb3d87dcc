// `npm run migrate`: applies committed migrations to DATABASE_URL and exits.
import { openDatabase } from './orm.js';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required');
const orm = await openDatabase({ url, migrate: true });
const executed = await orm.getMigrator().getExecutedMigrations();
console.log(`database is at migration ${executed.at(-1)?.name ?? '(none)'}`);
await orm.close();
