import { Worker } from 'node:worker_threads';
import type { Pool, PoolOptions } from '../pool.js';
import type { ToChild, ToParent } from './protocol.js';
import type { SlotHandle } from './slot-pool.js';
import { SlotPool } from './slot-pool.js';

/**
 * The `threads` pool: each slot is a worker thread that loads the app module, for CPU-bound tasks.
 * A thread is terminated at the hard time limit, on revoke-terminate and at the shutdown deadline
 * (even in a busy loop), and replaced. `maxMemoryPerChild` is compared with the thread's V8 heap.
 */
export function createPool(options: PoolOptions): Pool {
  return new SlotPool('threads', options, spawnThread);
}

function spawnThread(source: string): SlotHandle {
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
  let error: Error | null = null;
  worker.on('error', (err) => {
    error = err;
  });
  return {
    id: worker.threadId,
    send: (message: ToChild) => worker.postMessage(message),
    onMessage: (listener) => worker.on('message', (m: ToParent) => listener(m)),
    onExit: (listener) =>
      worker.once('exit', (code) =>
        listener(error ? `${error.name}: ${error.message}` : `thread exited with code ${code}`),
      ),
    kill: () => void worker.terminate(),
  };
}
