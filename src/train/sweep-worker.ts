// A sweep worker thread: holds the shared features (workerData) and runs the tasks it is sent.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import type { Task } from './sweep-space.js';
import { runTask, type SweepData } from './sweep-trial.js';

const data = workerData as SweepData;
parentPort!.on('message', (task: Task) => {
  runTask(task, data).then(
    (results) => parentPort!.postMessage({ results }),
    (e: unknown) => parentPort!.postMessage({ error: errorMessage(e) }),
  );
});
