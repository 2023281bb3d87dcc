// npm run bench -- <name> [options]: runs bench/<name>.ts. Each benchmark prints its figures next to
// a baseline measured in the same run (this machine is noisy: compare ratios, not absolute numbers).
import { readdirSync } from 'node:fs';

const available = readdirSync(new URL('.', import.meta.url))
  .filter((file) => file.endsWith('.ts') && !['index.ts', 'measure.ts'].includes(file))
  .map((file) => file.slice(0, -3));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name> [options]\nbenchmarks: ${available.join(', ')}`);
  process.exit(2);
}
process.argv.splice(2, 1); // the benchmark reads its own options
await import(`./${name}.ts`);
