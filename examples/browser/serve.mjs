#!/usr/bin/env node
// Serves the browser example on 127.0.0.1, with no dependency but Node and the onnxruntime-web package:
//   /           index.html, app.js, views.js (this folder)
//   /ort/       onnxruntime-web's dist files, straight from node_modules
//   /model/     the folder of the exported model (--model path/to/model.json)
// It sends the cross-origin-isolation headers, so that onnxruntime-web may use several threads.
//
//   node examples/browser/serve.mjs --model exported/model.json [--port 8080]
//   node examples/browser/serve.mjs --model exported/model.json --copy-to site/   # a static folder for any web server
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const PAGE_FILES = ['index.html', 'app.js', 'views.js'];
/** The wasm-only build of onnxruntime-web and the two files it loads. */
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.onnx': 'application/octet-stream', '.map': 'application/json',
};

export function ortDistDir() {
  // The package's main entry lives in dist/, beside the browser files.
  return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

/** The model.json file and its folder, from a path to model.json, to the .onnx beside it, or to their folder. */
export function modelFiles(model) {
  let json = resolve(model);
  if (existsSync(json) && statSync(json).isDirectory()) json = join(json, 'model.json');
  else if (extname(json).toLowerCase() === '.onnx') json = json.slice(0, -5) + '.json';
  if (!existsSync(json)) throw new Error(`${json}: no such model.json (viewprobe export --out …/model.onnx writes it)`);
  return { json, dir: dirname(json) };
}

function inside(root, rel) {
  const p = resolve(root, '.' + sep + decodeURIComponent(rel));
  return p === root || p.startsWith(root + sep) ? p : undefined;
}

/** Starts the server; resolves to its URL (with ?model= set) and a close function. */
export function startServer({ model, port = 8080, host = '127.0.0.1' }) {
  const m = modelFiles(model);
  const ortDir = ortDistDir();
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    let file;
    if (path === '/') file = join(here, 'index.html');
    else if (PAGE_FILES.includes(path.slice(1))) file = join(here, path.slice(1));
    else if (path.startsWith('/ort/')) file = inside(ortDir, path.slice(5));
    else if (path.startsWith('/model/')) file = inside(m.dir, path.slice(7));
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({
        url: `http://${host}:${p}/?model=${encodeURIComponent(`model/${basename(m.json)}`)}`,
        close: () => new Promise((done) => { server.closeAllConnections?.(); server.close(() => done()); }),
      });
    });
  });
}

/** A self-contained static folder: the page, onnxruntime-web's files and the model. */
export function copySite({ model, to }) {
  const m = modelFiles(model);
  const meta = JSON.parse(readFileSync(m.json, 'utf8'));
  const dest = resolve(to);
  mkdirSync(join(dest, 'ort'), { recursive: true });
  mkdirSync(join(dest, 'model'), { recursive: true });
  for (const f of PAGE_FILES) copyFileSync(join(here, f), join(dest, f));
  for (const f of ORT_FILES) copyFileSync(join(ortDistDir(), f), join(dest, 'ort', f));
  copyFileSync(m.json, join(dest, 'model', 'model.json'));
  copyFileSync(join(m.dir, meta.model.file), join(dest, 'model', meta.model.file));
  return dest;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, port: { type: 'string', default: '8080' }, 'copy-to': { type: 'string' } } });
  if (!values.model) {
    process.stderr.write('usage: node examples/browser/serve.mjs --model path/to/model.json [--port 8080] [--copy-to DIR]\n');
    process.exit(2);
  }
  try {
    if (values['copy-to']) {
      const dest = copySite({ model: values.model, to: values['copy-to'] });
      process.stdout.write(`Wrote ${dest}: serve it with any static web server (several threads only with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)\n`);
    } else {
      const { url } = await startServer({ model: values.model, port: Number(values.port) });
      process.stdout.write(`Serving the viewprobe page on ${url} (Ctrl-C stops)\n`);
    }
  } catch (e) {
    process.stderr.write(`serve.mjs: ${e.message}\n`);
    process.exit(2);
  }
}
