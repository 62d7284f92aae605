// Where the backbone weights come from: `--weights FILE`, or the default ResNet18 IMAGENET1K_V1
// safetensors, downloaded once into a per-user cache. A download lands in a temp file and is renamed
// into place only once complete (length, sha256, safetensors structure), so a partial file is never
// used; its size and sha256 go into a sidecar JSON that is checked each time the file is reused.
import { createHash } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cacheDir, downloadFile, downloadProgress } from '../download.js';
import { UserError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { readSafetensors, type SafetensorsFile } from './safetensors.js';

/** timm's copy of torchvision's ResNet18 IMAGENET1K_V1, with torchvision's tensor names. */
export const DEFAULT_WEIGHTS_URL = 'https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors';
export const DEFAULT_ARCH = 'resnet18';

interface Sidecar {
  url: string;
  size: number;
  sha256: string;
  downloaded: string;
}

export interface ResolveOptions {
  weights?: string;
  backbone?: string;
  quiet?: boolean;
  env?: NodeJS.ProcessEnv;
  /** For tests: shorter timeouts. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface ResolvedWeights {
  path: string;
  source: 'file' | 'cache' | 'download';
  /** The file, already read and checked when the cache or a download needed that anyway (read it once). */
  file?: SafetensorsFile;
}

/** The weights file to load: `--weights`, or the default downloaded once into the cache dir. */
export async function resolveWeights(opts: ResolveOptions = {}): Promise<ResolvedWeights> {
  if (opts.weights) return { path: resolve(opts.weights), source: 'file' };
  const arch = (opts.backbone ?? DEFAULT_ARCH).toLowerCase();
  if (arch !== DEFAULT_ARCH) {
    throw new UserError(`there are no default weights for ${arch} (only ${DEFAULT_ARCH}); pass --weights FILE (a ${arch} safetensors file)`);
  }
  const env = opts.env ?? process.env;
  const url = env.VIEWPROBE_WEIGHTS_URL || DEFAULT_WEIGHTS_URL;
  const expected = env.VIEWPROBE_WEIGHTS_SHA256?.trim().toLowerCase() || undefined;
  // One file per URL, so that overriding the URL never reuses another file.
  const dest = join(cacheDir(env), 'weights', `${arch}-${createHash('sha256').update(url).digest('hex').slice(0, 12)}.safetensors`);
  const say = (m: string) => { if (!opts.quiet) log(m); };

  const reused = await checkCached(dest, url, expected);
  if (reused && typeof reused !== 'string') return { path: dest, source: 'cache', file: reused };
  if (reused) say(`weights: the cached ${dest} ${reused}; downloading it again`);

  say(`weights: downloading the default ${arch} weights (torchvision IMAGENET1K_V1) from ${url}`);
  const progress = opts.quiet ? undefined : downloadProgress();
  let file: SafetensorsFile | undefined;
  try {
    const got = await downloadFile({
      url,
      dest,
      ...(expected ? { expectedSha256: expected } : {}),
      ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      // The whole structure, so that a body cut short by a server that sent no Content-Length is refused.
      validate: async (tmpPath) => {
        try {
          file = await readSafetensors(tmpPath);
        } catch (e) {
          // The temp file's name means nothing to the user.
          throw new Error(errorMessage(e).replace(`${tmpPath}: `, 'the downloaded file is '));
        }
      },
      ...(progress ? { onProgress: progress.update } : {}),
    });
    progress?.done();
    const sidecar: Sidecar = { url, size: got.size, sha256: got.sha256, downloaded: new Date().toISOString() };
    await writeFile(`${dest}.json.tmp`, JSON.stringify(sidecar, null, 2) + '\n');
    await rename(`${dest}.json.tmp`, `${dest}.json`);
    say(`weights: saved ${dest} (${got.size} bytes, sha256 ${got.sha256})`);
    return { path: dest, source: 'download', ...(file ? { file: { ...file, path: dest } } : {}) };
  } catch (e) {
    progress?.done();
    const why = errorMessage(e).split('\n')[0];
    throw new UserError(`cannot get the default ${arch} weights from ${url}: ${why}; pass --weights FILE (a ResNet safetensors file)`);
  }
}

/**
 * The cached file, read and checked against its sidecar (and the expected sha256); else why it cannot
 * be used, or undefined if there is none. Reading it here is the read the backbone needs anyway.
 */
async function checkCached(dest: string, url: string, expected: string | undefined): Promise<SafetensorsFile | string | undefined> {
  let side: Sidecar;
  try {
    side = JSON.parse(await readFile(`${dest}.json`, 'utf8')) as Sidecar;
  } catch {
    return undefined;
  }
  let st;
  try {
    st = await stat(dest);
  } catch {
    return 'is missing';
  }
  if (side.url !== url) return 'was downloaded from another URL';
  if (st.size !== side.size) return `is ${st.size} bytes, its record says ${side.size}`;
  let file: SafetensorsFile;
  try {
    file = await readSafetensors(dest);
  } catch (e) {
    return `cannot be read (${errorMessage(e).split('\n')[0]})`;
  }
  if (file.sha256 !== side.sha256) return 'does not match its recorded sha256';
  if (expected && file.sha256 !== expected) return `has sha256 ${file.sha256}, not the expected ${expected}`;
  return file;
}
