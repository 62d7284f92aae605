// One onnxruntime session in a worker thread. onnxruntime-node's session.run blocks the thread that
// calls it, so on the main thread it would stop decoding and view rendering for a whole batch; here
// it blocks only this worker. Requests are run one at a time, in the order they came. Protocol (see onnx.ts): workerData = { model, options }; the worker
// answers { ready: true } or { error }, then one { id, data } or { id, error } per { id, input, dims, output }.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface WorkerInit {
  model: Uint8Array;
  options: ort.InferenceSession.SessionOptions;
}

export interface RunRequest {
  id: number;
  /** NHWC floats; on a SharedArrayBuffer when the caller allocated it with the engine's allocInput. */
  input: Float32Array;
  dims: [number, number, number, number];
  output: 'features' | 'logits';
}

export type RunReply = { id: number; data: Float32Array } | { id: number; error: string };

const port = parentPort!;
const init = workerData as WorkerInit;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// onnxruntime-node refuses typed arrays on a SharedArrayBuffer, so shared inputs are copied into
// this worker's own buffer (~1 ms per 8 views at 244², against ~100 ms of inference).
let own = new Float32Array(0);
function ownCopy(input: Float32Array): Float32Array {
  if (!(input.buffer instanceof SharedArrayBuffer)) return input;
  if (own.length < input.length) own = new Float32Array(input.length);
  const view = own.length === input.length ? own : own.subarray(0, input.length);
  view.set(input);
  return view;
}

try {
  const session = await ort.InferenceSession.create(init.model, init.options);
  // The session has its own copy of the weights now: let the model bytes (~100 MB for resnet50) go.
  (init as Partial<WorkerInit>).model = undefined;
  const handle = async (req: RunRequest) => {
    try {
      const feed = new ort.Tensor('float32', ownCopy(req.input), req.dims);
      const result = await session.run({ input: feed }, [req.output]);
      const data = result[req.output]!.data as Float32Array;
      port.postMessage({ id: req.id, data } satisfies RunReply, [data.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: req.id, error: message(e) } satisfies RunReply);
    }
  };
  // One request at a time, in order: the next may arrive while this one runs, and they share `own`.
  let chain = Promise.resolve();
  port.on('message', (req: RunRequest) => { chain = chain.then(() => handle(req)); });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ error: message(e) });
}
