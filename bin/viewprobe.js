#!/usr/bin/env node
// The package's bin: runs the compiled CLI (npm ci / npm install build it through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('viewprobe: dist/ is missing; run `npm ci` (or `npm run build`) in the checkout first.\n');
  process.exit(2);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
