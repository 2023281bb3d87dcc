// `npm run temporal:ensure`: builds or resolves the Temporal servers into the cache (the dev server,
// the time-skipping test server, and the full server with its SQL tool and UI that `npm run cluster`
// runs), so the first test run or `npm start` does not pay for it. Safe to run again: it only does
// what is missing.
import { loadConfig } from '../config.js';
import { ensureTemporalCli } from './temporal/cli-binary.js';
import { ensureTemporalServerBinaries } from './temporal/server-binaries.js';
import { ensureTimeSkippingServer } from './temporal/test-server.js';

const config = loadConfig();
const cli = ensureTemporalCli(config);
console.log(`Temporal CLI (dev server): ${cli.type === 'existing-path' ? cli.path : 'SDK download'}`);
const testServer = ensureTimeSkippingServer(config.cacheDir);
console.log(
  `Temporal time-skipping test server: ${testServer.type === 'existing-path' ? testServer.path : 'SDK download'}`,
);
const full = ensureTemporalServerBinaries(config.cacheDir, console.log);
console.log(`Temporal server (npm run cluster): ${full.server}; UI server: ${full.ui}`);
