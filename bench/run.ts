// `npm run bench -- NAME [args...]` runs bench/NAME.ts (built to dist/bench/NAME.js), whose
// default export is `(args: string[]) => Promise<void>`. Benchmarks print Petrel's figure, the
// named baseline's figure measured in the same run, their ratio, and RSS. They assert nothing.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${available.join(', ') || '(none)'}`);
  process.exit(name ? 1 : 0);
}
const mod = await import(pathToFileURL(`${here}/${name}.js`).href);
await mod.default(args);
