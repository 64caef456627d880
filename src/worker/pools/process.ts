import { spawn } from 'node:child_process';
import type { Pool, PoolOptions } from '../pool.js';
import type { ToChild, ToParent } from './protocol.js';
import type { SlotHandle } from './slot-pool.js';
import { SlotPool } from './slot-pool.js';

/**
 * The `process` pool: each slot is a child process that loads the app module, for isolation and
 * hard kills. A child is sent SIGKILL at the hard time limit, on revoke-terminate and at the shutdown
 * deadline, and replaced. `maxMemoryPerChild` is compared with the child's RSS. A child exits when
 * the worker's process goes away (its IPC channel closes).
 */
export function createPool(options: PoolOptions): Pool {
  return new SlotPool('process', options, spawnChild);
}

function spawnChild(source: string): SlotHandle {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  let error: Error | null = null;
  child.on('error', (err) => {
    error = err;
  });
  return {
    id: child.pid ?? -1,
    send: (message: ToChild) => {
      if (!child.connected) throw new Error(`child ${child.pid} is gone`);
      child.send(message, (err) => {
        if (err) error = err;
      });
    },
    onMessage: (listener) => child.on('message', (m) => listener(m as ToParent)),
    onExit: (listener) =>
      child.once('exit', (code, signal) =>
        listener(
          error
            ? `${error.name}: ${error.message}`
            : signal
              ? `child killed by ${signal}`
              : `child exited with code ${code}`,
        ),
      ),
    kill: () => void child.kill('SIGKILL'),
  };
}
