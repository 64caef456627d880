/**
 * The inside of a pool thread or child process: installs the proxy transport and sink, imports the
 * app module, then runs tasks by name with the same semantics as the async pool (runTask: context,
 * bind, currentTask, soft limit on the context signal, Retry/Reject/Ignore, autoretryFor, all
 * classified here where the error classes exist). The hard limit is the parent's: it kills.
 */
import { getHeapStatistics } from 'node:v8';
import { TRANSPORT_OVERRIDE } from '../../brokers/registry.js';
import { SINK_OVERRIDE } from '../../results/registry.js';
import type { Task } from '../../task.js';
import type { Outcome } from '../execute.js';
import { runTask } from '../execute.js';
import { HostClient } from './host-client.js';
import type { BootInfo, RunSpec, ToChild, ToParent } from './protocol.js';
import { toWireError, toWireOutcome } from './protocol.js';
import { ProxySink, ProxyTransport } from './proxies.js';

/** The link to the parent: `parentPort` in a thread, the IPC channel in a child. */
export interface ParentLink {
  send(message: ToParent): void;
  onMessage(listener: (message: ToChild) => void): void;
  /** Memory this thread or child holds, compared with `maxMemoryPerChild` after each task. */
  memory(): number;
  exit(): void;
}

/** What the app module must provide: a Celeriac app (export `app`, or default). */
interface AppLike {
  readonly tasks: ReadonlyMap<string, Task<never[], unknown>>;
}

function isApp(value: unknown): value is AppLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { tasks?: unknown }).tasks instanceof Map &&
    typeof (value as { task?: unknown }).task === 'function'
  );
}

/** Finds the app among a module's exports: `app`, the default export, or the only app exported. */
export function findApp(mod: Record<string, unknown>): AppLike | null {
  if (isApp(mod.app)) return mod.app;
  if (isApp(mod.default)) return mod.default;
  const apps = Object.values(mod).filter(isApp);
  return apps.length === 1 ? (apps[0] as AppLike) : null;
}

/** Memory of this thread's V8 heap (a thread shares the process's RSS, so that says nothing). */
export function threadMemory(): number {
  return getHeapStatistics().used_heap_size;
}

export async function serve(link: ParentLink, boot: BootInfo): Promise<void> {
  const host = new HostClient((m) => link.send(m));
  const globals = globalThis as Record<symbol, unknown>;
  globals[TRANSPORT_OVERRIDE] = () => new ProxyTransport(host, boot.transport);
  const sinkInfo = boot.sink;
  globals[SINK_OVERRIDE] = () => {
    if (!sinkInfo) throw new Error('the main worker has no result sink (set `results` on the app it runs)');
    return new ProxySink(host, sinkInfo);
  };
  let app: AppLike | null = null;
  link.onMessage((message) => {
    if (host.receive(message)) return;
    if (message.t === 'exit') link.exit();
    // The parent sends runs only after 'ready'.
    else if (message.t === 'run' && app) void execute(app, host, link, message.runId, message.spec);
  });
  try {
    const mod = (await import(boot.appModule)) as Record<string, unknown>;
    app = findApp(mod);
    if (!app)
      throw new Error(
        `${boot.appModule} exports no Celeriac app: export it as \`app\` or as the default export`,
      );
  } catch (err) {
    link.send({ t: 'failed', error: toWireError(err) });
    return;
  }
  link.send({ t: 'ready' });
}

async function execute(
  app: AppLike,
  host: HostClient,
  link: ParentLink,
  runId: number,
  spec: RunSpec,
): Promise<void> {
  const task = app.tasks.get(spec.name);
  let outcome: Outcome;
  if (!task) {
    const error = new Error(`task '${spec.name}' is not registered in the app module loaded by this pool`);
    error.name = 'NotRegistered';
    outcome = { kind: 'failure', error };
  } else {
    outcome = await runTask({
      task,
      id: spec.id,
      args: spec.args,
      kwargs: spec.kwargs,
      headers: spec.headers,
      retries: spec.retries,
      queue: spec.queue,
      hostname: spec.hostname,
      event: spec.event,
      // The hard limit is enforced by the parent, which kills this thread or child.
      limits: { hardMs: null, softMs: spec.softMs },
      updateState: (state, meta) => host.call('run.updateState', [runId, state, meta]),
    });
  }
  try {
    link.send({ t: 'done', runId, outcome: toWireOutcome(outcome), memory: link.memory() });
  } catch (err) {
    // A result that cannot cross (a function, a class instance with private state…).
    const error = new TypeError(
      `the task's result cannot be sent to the main worker: ${(err as Error).message}`,
    );
    link.send({
      t: 'done',
      runId,
      outcome: { kind: 'failure', error: toWireError(error) },
      memory: link.memory(),
    });
  }
}
