// `npm run build`: the production build in dist/ (scripts/build/production-build.ts).
import { buildForProduction } from './build/production-build.js';

const started = performance.now();
await buildForProduction();
console.log(`build: dist/ in ${((performance.now() - started) / 1000).toFixed(1)} s`);
