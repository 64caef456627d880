import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Transport } from '../brokers/transport.js';
import { formatCeleryDate, parseCeleryDate } from '../messages/codec.js';
import type { Worker } from '../worker/worker.js';

/**
 * Header holding a message's send time (Celery's date format), written by publishers that opted in
 * with `stampSendTime(app)`. Celery's messages carry none: then latency is measured from receipt.
 */
export const SENT_AT_HEADER = 'celeriac_sent_at';

/**
 * Stamps every message the app publishes with its send time (header `celeriac_sent_at`), so workers'
 * `celeriac_task_latency_seconds` measures send-to-start. Opt-in: it adds a header that Celery's own
 * messages do not have (Python Celery ignores it). Returns a function that stops it.
 *
 * @example
 * stampSendTime(app);
 */
export function stampSendTime(app: {
  addPublishHeaders(hook: () => Record<string, unknown>): () => void;
}): () => void {
  return app.addPublishHeaders(() => ({ [SENT_AT_HEADER]: formatCeleryDate(Date.now()) }));
}

/** Seconds; runtimes and latencies from 5 ms to 5 minutes. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface WorkerMetricsOptions {
  /** The registry to register in (default: a new one; pass prom-client's `register` to share the default). */
  registry?: Registry;
  /** The worker's transport, for queue depth, reconnects and the publish backlog. */
  transport: () => Promise<Transport>;
  /** Queues whose depth is reported (default: the worker's queues). */
  queues?: readonly string[];
  /** How often the broker's health is checked to count reconnects. Default 1 s. */
  healthIntervalMs?: number;
}

/**
 * Prometheus metrics of one worker, from its typed event map (STYLE.md 11) and from the broker:
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `celeriac_tasks_total` | counter | task, state (received, started, succeeded, failed, retried, revoked, rejected) |
 * | `celeriac_task_retries_total` | counter | task |
 * | `celeriac_task_runtime_seconds` | histogram | task, state (succeeded, failed) |
 * | `celeriac_task_latency_seconds` | histogram | task: send-to-start (send time from `stampSendTime`, else receipt by the worker; from the eta when later) |
 * | `celeriac_queue_depth` | gauge | queue: ready messages, read from the broker at scrape time |
 * | `celeriac_worker_concurrency` | gauge | tasks the default pool runs at once |
 * | `celeriac_worker_active_tasks` | gauge | tasks running now (concurrency in use) |
 * | `celeriac_worker_prefetched_tasks` | gauge | received, not started |
 * | `celeriac_broker_reconnects_total` | counter | times the broker came back after being unhealthy |
 * | `celeriac_broker_up` | gauge | 1 healthy or degraded, 0 unhealthy |
 * | `celeriac_publish_backlog` | gauge | messages waiting for the broker (transports that keep a backlog) |
 *
 * Queue depth is enough for KEDA's Prometheus scaler or an HPA on an external metric.
 *
 * @example
 * const metrics = new WorkerMetrics(worker, { transport: () => app.transport() });
 * const server = await startMetricsServer(metrics.registry, { port: 9808 });
 */
export class WorkerMetrics {
  readonly registry: Registry;
  readonly #worker: Worker;
  readonly #received = new Map<string, number>();
  #healthTimer: NodeJS.Timeout | null = null;
  #wasUp = true;
  readonly reconnects: Counter<string>;

  constructor(worker: Worker, options: WorkerMetricsOptions) {
    this.#worker = worker;
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    const registers = [registry];
    const tasks = new Counter({
      name: 'celeriac_tasks_total',
      help: 'Tasks by name and state reached',
      labelNames: ['task', 'state'],
      registers,
    });
    const retries = new Counter({
      name: 'celeriac_task_retries_total',
      help: 'Retries scheduled, by task',
      labelNames: ['task'],
      registers,
    });
    const runtime = new Histogram({
      name: 'celeriac_task_runtime_seconds',
      help: 'Task run time, by task and outcome',
      labelNames: ['task', 'state'],
      buckets: BUCKETS,
      registers,
    });
    const latency = new Histogram({
      name: 'celeriac_task_latency_seconds',
      help: 'Time from send (celeriac_sent_at, else receipt by the worker), or from the eta when later, to start, by task',
      labelNames: ['task'],
      buckets: BUCKETS,
      registers,
    });
    this.reconnects = new Counter({
      name: 'celeriac_broker_reconnects_total',
      help: 'Times the broker connection came back after being unhealthy',
      registers,
    });
    const queues = () => options.queues ?? worker.queues;
    let transport: Transport | null = null;
    const getTransport = async () => {
      transport ??= await options.transport();
      return transport;
    };
    new Gauge({
      name: 'celeriac_queue_depth',
      help: 'Messages ready in the queue (sampled from the broker at scrape time)',
      labelNames: ['queue'],
      registers,
      async collect() {
        const t = await getTransport();
        const depths = await Promise.all(queues().map((q) => t.depth(q).catch(() => Number.NaN)));
        this.reset();
        for (const [i, q] of queues().entries()) this.set({ queue: q }, depths[i] as number);
      },
    });
    new Gauge({
      name: 'celeriac_worker_concurrency',
      help: 'Tasks the default pool runs at once',
      registers,
      collect() {
        this.set(worker.concurrency);
      },
    });
    new Gauge({
      name: 'celeriac_worker_active_tasks',
      help: 'Tasks running now (concurrency in use)',
      registers,
      collect() {
        this.set(worker.active);
      },
    });
    new Gauge({
      name: 'celeriac_worker_prefetched_tasks',
      help: 'Messages received and not started yet (reserved, and eta tasks held until due)',
      registers,
      collect() {
        this.set(worker.reserved);
      },
    });
    new Gauge({
      name: 'celeriac_broker_up',
      help: '1 when the broker is healthy or degraded, 0 when unhealthy',
      registers,
      async collect() {
        const t = await getTransport();
        this.set(t.health().status === 'unhealthy' ? 0 : 1);
      },
    });
    new Gauge({
      name: 'celeriac_publish_backlog',
      help: 'Messages waiting for the broker to come back (transports that keep a publish backlog)',
      registers,
      async collect() {
        const backlog = publishBacklog(await getTransport());
        if (backlog !== null) this.set(backlog);
      },
    });

    worker.on('task-received', (e) => {
      tasks.inc({ task: e.name, state: 'received' });
      const sent = e.headers[SENT_AT_HEADER];
      let from = e.at;
      if (typeof sent === 'string') {
        try {
          from = parseCeleryDate(sent);
        } catch {
          // not ours: measure from receipt
        }
      }
      if (e.eta) {
        try {
          from = Math.max(from, parseCeleryDate(e.eta));
        } catch {
          // a bad eta is the worker's problem, not the metric's
        }
      }
      this.#received.set(e.id, from);
    });
    worker.on('task-started', (e) => {
      tasks.inc({ task: e.name, state: 'started' });
      const from = this.#received.get(e.id);
      this.#received.delete(e.id);
      if (from !== undefined) latency.observe({ task: e.name }, Math.max(0, e.at - from) / 1000);
    });
    worker.on('task-succeeded', (e) => {
      tasks.inc({ task: e.name, state: 'succeeded' });
      runtime.observe({ task: e.name, state: 'succeeded' }, e.runtimeMs / 1000);
    });
    worker.on('task-failed', (e) => {
      tasks.inc({ task: e.name, state: 'failed' });
      runtime.observe({ task: e.name, state: 'failed' }, e.runtimeMs / 1000);
    });
    worker.on('task-retried', (e) => {
      tasks.inc({ task: e.name, state: 'retried' });
      retries.inc({ task: e.name });
    });
    worker.on('task-revoked', (e) => {
      this.#received.delete(e.id);
      tasks.inc({ task: e.name, state: 'revoked' });
    });
    worker.on('task-rejected', (e) => {
      if (e.id) this.#received.delete(e.id);
      tasks.inc({ task: e.name ?? 'unknown', state: 'rejected' });
    });
    const healthMs = options.healthIntervalMs ?? 1000;
    worker.on('worker-online', () => {
      this.#healthTimer ??= setInterval(() => {
        void getTransport().then(
          (t) => this.#checkHealth(t),
          () => {},
        );
      }, healthMs);
      this.#healthTimer.unref();
    });
    worker.on('worker-offline', () => this.close());
  }

  /** Counts a reconnect each time the broker turns healthy again. */
  #checkHealth(t: Transport): void {
    const up = t.health().status !== 'unhealthy';
    if (up && !this.#wasUp) this.reconnects.inc();
    this.#wasUp = up;
  }

  /** The text exposition (what `/metrics` serves). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops the broker health sampling. */
  close(): void {
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    this.#healthTimer = null;
  }

  /** Tasks received whose start is pending (for tests and the dashboard). */
  get pending(): number {
    return this.#received.size;
  }

  /** The worker these metrics describe. */
  get worker(): Worker {
    return this.#worker;
  }
}

/** The transport's publish backlog, when it keeps one (a numeric `backlog`), else null. */
function publishBacklog(t: Transport): number | null {
  const backlog = (t as unknown as { backlog?: unknown }).backlog;
  return typeof backlog === 'number' ? backlog : null;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on `port` (0: a free one), on `host` (default
 * 0.0.0.0, so a Prometheus in the cluster can scrape it).
 *
 * @example
 * const server = await startMetricsServer(metrics.registry, { port: 9808 });
 * await server.close();
 */
export async function startMetricsServer(
  registry: Registry,
  options: { port: number; host?: string },
): Promise<{ port: number; close(): Promise<void> }> {
  const routes = new Hono();
  routes.get('/metrics', async () => {
    const text = await registry.metrics();
    return new Response(text, { headers: { 'content-type': registry.contentType } });
  });
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: routes.fetch, port: options.port, hostname: options.host ?? '0.0.0.0' }, () =>
      resolve(s),
    );
    s.once('error', reject);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
