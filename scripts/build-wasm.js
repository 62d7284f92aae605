#!/usr/bin/env node
// Compiles every AssemblyScript kernel module, assembly/NAME.ts -> dist/assembly/NAME.wasm (src/wasm.ts
// loads them). Run by `npm run build` / `prepare` and by the tests' global setup; exits non-zero on the
// first module that fails.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const asc = createRequire(import.meta.url).resolve('assemblyscript/bin/asc.js');
for (const file of readdirSync(join(root, 'assembly')).filter((f) => f.endsWith('.ts')).sort()) {
  const name = file.slice(0, -3);
  execFileSync(process.execPath, [asc, `assembly/${file}`, '-o', `dist/assembly/${name}.wasm`, '--config', 'assembly/asconfig.json'], { cwd: root, stdio: 'inherit' });
}
