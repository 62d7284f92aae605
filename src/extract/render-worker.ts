// Worker-thread side of render.ts: messages are handled strictly in order, so a `seal` finds every
// view asked for before it already rendered. Any error is reported once; the pipeline then stops.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { getPreset } from './presets.js';
import { ViewRenderer, type FromWorker, type ToWorker, type WorkerInit } from './render.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const renderer = new ViewRenderer(getPreset(init.preset), init.norm, init.seed, init.batch);
let failed = false;

const reply = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

port.on('message', (m: ToWorker) => {
  if (failed) return;
  try {
    switch (m.t) {
      case 'image':
        renderer.addImage(m.id, m.hash, { data: m.data, width: m.width, height: m.height }, m.clean, m.aug);
        break;
      case 'render':
        renderer.render(m.id, m.b, m.pairs);
        break;
      case 'release':
        renderer.release(m.id);
        break;
      case 'seal': {
        const data = renderer.take(m.b);
        reply({ t: 'sealed', b: m.b, data }, [data.buffer as ArrayBuffer]);
        break;
      }
      case 'give':
        renderer.give(m.b, m.data);
        break;
    }
  } catch (e) {
    failed = true;
    reply({ t: 'error', message: errorMessage(e) });
  }
});
