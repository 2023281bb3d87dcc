// The worker as deployed: how long from `node` starting until it polls for payments, and its idle
// resident memory, from the production build (`npm run build`: JavaScript and the pre-bundled
// workflow code) against the baseline of the same run, the sources through tsx bundling as they
// start. Targets: ready in under 3 s, idle RSS at most 250 MB. Builds first.
// Uses DATABASE_URL (or an embedded PGlite) and TEMPORAL_ADDRESS (or a dev server of its own).
//   npm run bench -- worker-start --runs 3
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { buildForProduction } from '../scripts/build/production-build.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { median } from './measure.js';
import { mb, spawnWorker, type WorkerRuntime } from './support/worker-process.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);

const config = loadConfig();
const built = performance.now();
await buildForProduction();
const buildSeconds = (performance.now() - built) / 1000;
const stack = await startLocalStack(config, {}, { worker: false });

const results: Record<WorkerRuntime, { readyMs: number[]; rss: number[] }> = {
  source: { readyMs: [], rss: [] },
  build: { readyMs: [], rss: [] },
};
// Alternated, so that the machine's noise falls on both alike.
for (let run = 0; run < runs; run++) {
  for (const runtime of ['source', 'build'] as const) {
    const worker = spawnWorker(stack, config, runtime);
    results[runtime].readyMs.push(await worker.ready);
    // Idle: what it holds once started, its pollers waiting.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    results[runtime].rss.push(worker.memory('VmRSS'));
    await worker.stop();
  }
}

console.log(
  `worker start: ${runs} runs each, alternated; database ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}; Temporal ${config.temporalAddress ? `server at ${config.temporalAddress}` : 'dev server'}; npm run build took ${buildSeconds.toFixed(1)} s`,
);
for (const runtime of ['source', 'build'] as const) {
  const { readyMs, rss } = results[runtime];
  const label = runtime === 'source' ? 'sources through tsx (baseline)' : 'production build            ';
  console.log(
    `  ${label}  ready in ${(median(readyMs) / 1000).toFixed(2)} s (runs: ${readyMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')}); idle RSS ${mb(median(rss))} (runs: ${rss.map(mb).join(', ')})`,
  );
}
const ratio = (key: 'readyMs' | 'rss') => (median(results.build[key]) / median(results.source[key])).toFixed(2);
console.log(
  `  build / baseline: ready ${ratio('readyMs')}, RSS ${ratio('rss')} (targets: ready < 3 s, idle RSS ≤ 250 MB)`,
);
await stack.stop();
