// One place that loads TensorFlow.js and picks its backend, in a stated order: the native CUDA
// binding, the native CPU binding, then WebAssembly, then plain JS. The native bindings are
// optionalDependencies whose install downloads libtensorflow, so they are often absent: each one
// that does not load is skipped with its reason, never a stack trace.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';

export type TfBackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';

export interface LoadedTf {
  tf: typeof TF;
  backend: TfBackendName;
  device: 'cuda' | 'cpu';
  threads: number;
  /** Why each backend tried before the chosen one was skipped. */
  skipped: string[];
}

const require = createRequire(import.meta.url);
let loaded: Promise<LoadedTf> | undefined;
let loadedKey = '';

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);
}

async function tryBackend(tf: typeof TF, name: TfBackendName, threads: number): Promise<void> {
  if (name === 'tfjs-node-gpu' || name === 'tfjs-node') {
    // TensorFlow sizes its CPU thread pools from these when the binding creates its eager context
    // (tensorflow/core/common_runtime/process_util.cc), so they must be set before the import; a
    // value the user exported wins. (tfjs-node cannot be installed here: this path is untested.)
    process.env.TF_NUM_INTRAOP_THREADS ??= String(threads);
    process.env.TF_NUM_INTEROP_THREADS ??= '1';
    // Importing the binding registers the 'tensorflow' backend on the shared tfjs instance.
    await import(name === 'tfjs-node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
    if (!(await tf.setBackend('tensorflow'))) throw new Error('backend "tensorflow" did not initialise');
    return;
  }
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(join(dist, '/'));
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('backend "wasm" did not initialise');
    return;
  }
  if (!(await tf.setBackend('cpu'))) throw new Error('backend "cpu" did not initialise');
}

/**
 * The threads the backend really uses: the wasm backend runs single-threaded under Node (tfjs
 * reports WASM_HAS_MULTITHREAD_SUPPORT false there) whatever setThreadsCount was asked.
 */
function actualThreads(tf: typeof TF, name: TfBackendName, asked: number): number {
  if (name === 'cpu') return 1;
  if (name !== 'wasm') return Number(process.env.TF_NUM_INTRAOP_THREADS) || asked;
  const b = tf.backend() as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
  return b.wasm?.tfjs?.getThreadsCount?.() ?? 1;
}

/**
 * Loads tfjs with the first backend of `order` that works. Cached per process (tfjs has one global
 * engine); asking again with another order re-selects among the backends already registered.
 */
export function loadTf(order: TfBackendName[], threads: number): Promise<LoadedTf> {
  const key = order.join(',') + '@' + threads;
  if (loaded && loadedKey === key) return loaded;
  loadedKey = key;
  loaded = (async () => {
    const tf = await import('@tensorflow/tfjs');
    const skipped: string[] = [];
    for (const name of order) {
      try {
        await tryBackend(tf, name, threads);
        await tf.ready();
        const device = name === 'tfjs-node-gpu' ? 'cuda' : 'cpu';
        return { tf, backend: name, device, threads: actualThreads(tf, name, threads), skipped };
      } catch (e) {
        skipped.push(`${name}: ${firstLine(e)}`);
      }
    }
    throw new Error(`no TensorFlow.js backend loaded (${skipped.join('; ')})`);
  })();
  return loaded;
}
