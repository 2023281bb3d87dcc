// `npm run temporal:ensure`: builds or resolves both Temporal servers into the cache, so the first
// test run or `npm start` does not pay for it. Safe to run again: it only does what is missing.
import { loadConfig } from '../config.js';
import { ensureTemporalCli } from '../temporal/cli-binary.js';
import { ensureTimeSkippingServer } from '../temporal/test-server.js';

const config = loadConfig();
const cli = ensureTemporalCli(config);
console.log(`Temporal CLI (dev server): ${cli.type === 'existing-path' ? cli.path : 'SDK download'}`);
const testServer = ensureTimeSkippingServer(config.cacheDir);
console.log(`Temporal time-skipping test server: ${testServer.type === 'existing-path' ? testServer.path : 'SDK download'}`);
