/**
 * Entry point of a pool thread or child process, imported by the bootstrap (bootstrap.ts) once tsx
 * is registered where needed. Exports `main` only: importing it starts nothing.
 */
import { parentPort } from 'node:worker_threads';
import type { ParentLink } from './child-runtime.js';
import { serve, threadMemory } from './child-runtime.js';
import type { BootInfo, ToChild, ToParent } from './protocol.js';

export async function main(boot: BootInfo): Promise<void> {
  // A stray rejection in a task's background work is logged, not fatal: the thread or child keeps
  // serving (an uncaught exception still ends it; the parent then fails the run and replaces it).
  process.on('unhandledRejection', (reason) => {
    console.error('celeriac pool: unhandled rejection in a task', reason);
  });
  await serve(parentPort ? threadLink(parentPort) : processLink(), boot);
}

function threadLink(port: NonNullable<typeof parentPort>): ParentLink {
  return {
    send: (message: ToParent) => port.postMessage(message),
    onMessage: (listener) => port.on('message', (m: ToChild) => listener(m)),
    memory: threadMemory,
    exit: () => process.exit(0),
  };
}

function processLink(): ParentLink {
  const send = process.send?.bind(process);
  if (!send) throw new Error('celeriac pool child started without an IPC channel');
  // The parent is gone: nobody will read results or send work.
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C reaches the whole process group, and systemd signals the whole cgroup: the worker decides
  // when its children stop (after the graceful drain, or SIGKILL at the deadline), not the signal.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => {});
  return {
    send: (message: ToParent) => {
      send(message);
    },
    onMessage: (listener) => process.on('message', (m) => listener(m as ToChild)),
    memory: () => process.memoryUsage.rss(),
    exit: () => process.exit(0),
  };
}
