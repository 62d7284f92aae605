// Ctrl-C during a long extract. The first SIGINT (or SIGTERM) stops starting views: the batches in
// flight are run and committed, and the run ends with exit 130. The second stops at once: nothing
// more is committed, and only the batches already inside the engine are waited for, since tearing
// them down mid-run is a native abort (exit 134) rather than an exit. A third kills the process
// outright (SIGKILL): every committed transaction survives that too.
import { log } from '../log.js';

export class Interrupts {
  /** Aborted by the second signal: the pipeline's `abort`. */
  readonly controller = new AbortController();
  private count = 0;
  private readonly onSignal = () => this.signal();

  /** The first signal came: no new view is started. */
  get stopRequested(): boolean {
    return this.count > 0;
  }

  install(): this {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    return this;
  }

  remove(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private signal(): void {
    this.count++;
    if (this.count === 1) {
      log('\nviewprobe: interrupt: finishing and committing the batches in flight (press Ctrl-C again to stop at once)');
    } else if (this.count === 2) {
      log('\nviewprobe: second interrupt: stopping now; views not committed yet are dropped, the cache keeps every commit (press Ctrl-C again to kill at once)');
      this.controller.abort();
    } else {
      process.kill(process.pid, 'SIGKILL');
    }
  }
}
