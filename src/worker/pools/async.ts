import type { HealthReport } from '../../health.js';
import type { Outcome } from '../execute.js';
import { runTask } from '../execute.js';
import type { Pool, PoolOptions, PoolRun } from '../pool.js';

/**
 * The default pool: handlers run on the event loop (for I/O-bound tasks). A hard time limit fails
 * the task at the limit, but the handler's code cannot be killed and may keep running: use the
 * threads or process pool for tasks that must really stop.
 */
export class AsyncPool implements Pool {
  readonly kind = 'async' as const;
  #size: number;

  constructor(options: PoolOptions) {
    this.#size = options.size;
  }

  get size(): number {
    return this.#size;
  }

  async start(): Promise<void> {}

  run(run: PoolRun): Outcome | Promise<Outcome> {
    // Passed as is (no spread): a spread would read `signal` and create it for nothing.
    return runTask(run.controller ? run : { ...run, external: run.signal });
  }

  resize(size: number): void {
    this.#size = Math.max(1, Math.floor(size));
  }

  async stop(): Promise<void> {}

  health(): HealthReport {
    return { status: 'healthy' };
  }
}
