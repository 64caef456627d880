import { loadavg, type as osType } from 'node:os';
import type { Transport } from '../../brokers/transport.js';
import type { Logger } from '../../logging.js';
import { saferepr } from '../../messages/repr.js';
import type { Worker } from '../../worker/worker.js';
import { EventDispatcher } from './dispatcher.js';
import type { WorkerFields } from './types.js';
import { exceptionRepr, SW_VERSION } from './util.js';

export interface WorkerEventsOptions {
  /** The app's transport (its `fanout` port carries the events). */
  transport: () => Promise<Transport>;
  log: Logger;
  /** Heartbeat interval; Celery's is 2 s (sent as `freq: 2.0`). */
  heartbeatMs?: number;
  flushIntervalMs?: number;
}

/** Stops sending a worker's events, after the last ones (worker-offline) are out. */
export interface MonitoringEvents {
  close(): Promise<void>;
}

/**
 * Sends a worker's monitoring events, as Celery's `-E`: it listens to the worker's typed event map
 * and turns each entry into Celery's event, with Celery's field names and reprs; task events are
 * batched under `task.multi`; worker-online, a worker-heartbeat every 2 s and worker-offline are
 * sent singly. `app.worker({ events: true })` calls this.
 *
 * @example
 * const worker = app.worker();
 * const events = sendWorkerEvents(worker, { transport: () => app.transport(), log: app.log });
 */
export function sendWorkerEvents(worker: Worker, options: WorkerEventsOptions): MonitoringEvents {
  const freqMs = options.heartbeatMs ?? 2000;
  let heartbeat: NodeJS.Timeout | null = null;
  const fanout = options.transport().then((t) => {
    if (!t.fanout) throw new Error(`the ${t.kind} broker has no fan-out: monitoring events cannot be sent`);
    return { fanout: t.fanout, priority: t.defaultPriority ?? 0 };
  });
  fanout.catch((err: unknown) => options.log.warn({ err }, 'monitoring events are off'));
  const dispatcher = new EventDispatcher({
    fanout: fanout.then((f) => f.fanout),
    priority: fanout.then((f) => f.priority),
    hostname: worker.hostname,
    log: options.log,
    ...(options.flushIntervalMs !== undefined ? { flushIntervalMs: options.flushIntervalMs } : {}),
  });
  const fields = (): WorkerFields => ({
    freq: freqMs / 1000,
    active: worker.active,
    processed: processed(worker),
    loadavg: loadavg().map((n) => Math.round(n * 100) / 100),
    sw_ident: 'celeriac',
    sw_ver: SW_VERSION,
    sw_sys: osType(),
  });
  worker.on('worker-online', () => {
    dispatcher.send('worker-online', fields());
    heartbeat ??= setInterval(() => dispatcher.send('worker-heartbeat', fields()), freqMs);
    heartbeat.unref();
  });
  worker.on('worker-offline', () => {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
    dispatcher.send('worker-offline', fields());
  });
  worker.on('task-received', (e) => {
    const h = e.headers;
    dispatcher.send('task-received', {
      uuid: e.id,
      name: e.name,
      args: typeof h.argsrepr === 'string' ? h.argsrepr : '()',
      kwargs: typeof h.kwargsrepr === 'string' ? h.kwargsrepr : '{}',
      root_id: h.root_id ?? null,
      parent_id: h.parent_id ?? null,
      retries: e.retries,
      eta: h.eta ?? null,
      expires: h.expires ?? null,
    });
  });
  worker.on('task-started', (e) => dispatcher.send('task-started', { uuid: e.id }));
  worker.on('task-succeeded', (e) =>
    dispatcher.send('task-succeeded', {
      uuid: e.id,
      result: saferepr(e.result),
      runtime: e.runtimeMs / 1000,
    }),
  );
  worker.on('task-failed', (e) =>
    dispatcher.send('task-failed', {
      uuid: e.id,
      exception: exceptionRepr(e.error),
      traceback: e.error.stack ?? null,
    }),
  );
  worker.on('task-retried', (e) =>
    dispatcher.send('task-retried', {
      uuid: e.id,
      exception: e.error ? exceptionRepr(e.error) : 'None',
      traceback: e.error?.stack ?? null,
    }),
  );
  worker.on('task-revoked', (e) =>
    dispatcher.send('task-revoked', {
      uuid: e.id,
      terminated: false,
      signum: null,
      expired: e.reason === 'expired',
    }),
  );
  worker.on('task-rejected', (e) => dispatcher.send('task-rejected', { uuid: e.id, requeue: false }));
  return {
    async close() {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      await dispatcher.close();
    },
  };
}

/** Celery's `processed`: tasks this worker has finished, whatever the outcome. */
function processed(worker: Worker): number {
  const s = worker.stats;
  return s.succeeded + s.failed + s.retried + s.revoked + s.rejected;
}
