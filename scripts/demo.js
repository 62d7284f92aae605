#!/usr/bin/env node
// `npm run demo`: the recommended flow (extract, sweep) beside the seed recipe, on held-out images.
// The work is in src/demo/main.ts (compiled to dist/ by npm ci).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const demo = new URL('../dist/demo/main.js', import.meta.url);
if (!existsSync(fileURLToPath(demo))) {
  process.stderr.write('demo: dist/ is missing; run `npm ci` (or `npm run build`) in the checkout first.\n');
  process.exit(2);
}
const { runDemo } = await import(demo.href);
process.exitCode = await runDemo(process.argv.slice(2));
