import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { SSEStreamingApi } from 'hono/streaming';
import { streamSSE } from 'hono/streaming';
import type { Celeriac } from '../app.js';
import { redactUrl } from '../brokers/url.js';
import type { EventReceiver } from '../observability/events/receiver.js';
import type { TaskView, WorkerView } from '../observability/events/state.js';
import { ClusterState } from '../observability/events/state.js';
import type { CeleryEvent } from '../observability/events/types.js';
import { receiveEvents } from '../observability/index.js';
import type { DashboardAuth } from './auth.js';
import { authMiddleware } from './auth.js';
import { PAGE } from './page.js';
import { TaskSeries } from './stats.js';

export interface DashboardOptions {
  /** The app whose broker (and result store) the dashboard watches and acts on. */
  app: Celeriac;
  /** Default 5555 (Flower's); 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. Any other address needs `auth`. */
  host?: string;
  auth?: DashboardAuth;
  /** Queues to show besides those the workers report and the tasks name. */
  queues?: readonly string[];
  /** Tasks kept in memory (oldest dropped first). Default 10,000. */
  maxTasks?: number;
  /** How often queue depths are sampled. Default 2 s. */
  sampleMs?: number;
}

/** A running dashboard. */
export interface DashboardServer {
  readonly port: number;
  readonly url: string;
  readonly state: ClusterState;
  close(): Promise<void>;
}

/** A queue as the page shows it. Rates are messages per second over the last sample. */
export interface QueueView {
  name: string;
  depth: number | null;
  rateIn: number | null;
  rateOut: number | null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The dashboard: a web page with the workers, queues, live tasks and charts, fed by the monitoring
 * events of Celeriac and Celery workers (`-E`), with actions (retry, revoke, purge). Live updates
 * go to the page over Server-Sent Events. Bound to 127.0.0.1 unless told otherwise, and then only
 * with auth.
 *
 * @example
 * const dashboard = await startDashboard({ app, port: 5555 });
 * console.log(dashboard.url);
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  const auth = options.auth ?? null;
  if (!LOOPBACK.has(host) && !auth)
    throw new Error(`the dashboard listens on ${host} only with --auth user:pass or --token`);
  const { app } = options;
  const transport = await app.transport();
  const state = new ClusterState({ maxTasks: options.maxTasks ?? 10_000 });
  const series = new TaskSeries();
  const queueNames = new Set<string>([app.config.defaultQueue, ...(options.queues ?? [])]);
  const queues = new Map<string, QueueView & { at: number; sent: number }>();
  const sentPerQueue = new Map<string, number>();
  const clients = new Set<SSEStreamingApi>();
  const dirtyTasks = new Map<string, TaskView>();
  const dirtyWorkers = new Map<string, WorkerView>();
  const concurrency = new Map<string, number>();
  let soon: NodeJS.Timeout | null = null;

  const onEvent = (e: CeleryEvent) => {
    const before = typeof e.uuid === 'string' ? state.tasks.get(e.uuid)?.state : undefined;
    const changed = state.apply(e);
    if (!changed) return;
    if ('uuid' in changed) {
      if (changed.state !== before) series.record(changed, e.timestamp);
      if (e.type === 'task-sent' && typeof e.queue === 'string') {
        queueNames.add(e.queue);
        sentPerQueue.set(e.queue, (sentPerQueue.get(e.queue) ?? 0) + 1);
      }
      dirtyTasks.set(changed.uuid, changed);
    } else {
      dirtyWorkers.set(changed.hostname, changed);
      // A worker not asked yet: ask for its queues and concurrency soon (debounced).
      if (!concurrency.has(changed.hostname) && !soon) soon = setTimeout(() => void discover(), 300);
    }
  };

  const workerOut = (w: WorkerView) => ({ ...w, concurrency: concurrency.get(w.hostname) ?? null });
  const broadcast = (event: string, data: unknown) => {
    const text = JSON.stringify(data);
    for (const c of clients) void c.writeSSE({ event, data: text }).catch(() => clients.delete(c));
  };
  const flush = setInterval(() => {
    if (dirtyTasks.size) broadcast('tasks', [...dirtyTasks.values()]);
    if (dirtyWorkers.size) broadcast('workers', [...dirtyWorkers.values()].map(workerOut));
    dirtyTasks.clear();
    dirtyWorkers.clear();
  }, 200);

  const sampleQueues = async () => {
    const now = Date.now();
    await Promise.all(
      [...queueNames].map(async (name) => {
        const depth = await transport.depth(name).catch(() => null);
        const prev = queues.get(name);
        const sent = sentPerQueue.get(name) ?? 0;
        let rateIn: number | null = null;
        let rateOut: number | null = null;
        if (prev && depth !== null && prev.depth !== null) {
          const dt = (now - prev.at) / 1000;
          rateIn = (sent - prev.sent) / dt;
          rateOut = Math.max(0, rateIn - (depth - prev.depth) / dt);
        }
        queues.set(name, { name, depth, rateIn, rateOut, at: now, sent });
      }),
    );
  };
  const queueList = (): QueueView[] =>
    [...queues.values()]
      .map(({ name, depth, rateIn, rateOut }) => ({ name, depth, rateIn, rateOut }))
      .sort((a, b) => a.name.localeCompare(b.name));
  const stats = () => ({ queues: queueList(), series: series.points(), now: Date.now() / 1000 });
  await sampleQueues();
  const sampler = setInterval(() => {
    void sampleQueues().then(() => broadcast('stats', stats()));
  }, options.sampleMs ?? 2000);
  // The queues the workers consume (Celeriac's and Celery's answer `active_queues`).
  // Their concurrency too (heartbeats do not carry it): `stats` → pool.max-concurrency.
  const discover = async () => {
    if (soon) clearTimeout(soon);
    soon = null;
    const inspect = app.control.inspect({ timeout: 1000 });
    const [queuesOf, statsOf] = await Promise.all([
      inspect.activeQueues().catch(() => ({})),
      inspect.stats().catch(() => ({})),
    ]);
    for (const list of Object.values(queuesOf))
      for (const q of list) if (typeof q.name === 'string') queueNames.add(q.name);
    for (const [node, s] of Object.entries(statsOf)) {
      const max = (s.pool as Record<string, unknown> | undefined)?.['max-concurrency'];
      if (typeof max === 'number' && concurrency.get(node) !== max) {
        concurrency.set(node, max);
        const w = state.workers.get(node);
        if (w) dirtyWorkers.set(node, w);
      }
    }
  };
  for (const t of [flush, sampler]) t.unref();
  // Events start flowing only now that everything they touch exists.
  let receiver: EventReceiver;
  try {
    receiver = await receiveEvents(app, onEvent);
  } catch (err) {
    for (const t of [flush, sampler]) clearInterval(t);
    throw err;
  }
  void discover();
  const discovery = setInterval(() => void discover(), 10_000);
  discovery.unref();

  const routes = new Hono();
  routes.use('*', authMiddleware(auth));
  routes.get('/', (c) => c.html(PAGE));
  routes.get('/api/state', (c) =>
    c.json({
      broker: redactUrl(app.config.broker),
      workers: [...state.workers.values()].map(workerOut),
      tasks: [...state.tasks.values()].slice(-2000),
      ...stats(),
    }),
  );
  routes.get('/api/tasks/:id', async (c) => {
    const id = c.req.param('id');
    const task = state.tasks.get(id) ?? null;
    const sink = await app.resultSink().catch(() => null);
    const meta = sink ? await sink.get(id).catch(() => null) : null;
    if (!task && !meta) return c.json({ error: `unknown task ${id}` }, 404);
    return c.json({ task, meta });
  });
  routes.get('/api/stream', (c) =>
    streamSSE(c, async (stream) => {
      clients.add(stream);
      await stream.writeSSE({ event: 'stats', data: JSON.stringify(stats()) });
      await new Promise<void>((resolve) => {
        stream.onAbort(() => resolve());
        closing.then(resolve, resolve);
      });
      clients.delete(stream);
    }),
  );
  routes.post('/api/tasks/:id/revoke', async (c) => {
    const id = c.req.param('id');
    const body = (await c.req.json().catch(() => ({}))) as { terminate?: unknown };
    await app.control.revoke(id, { terminate: body.terminate === true });
    return c.json({ ok: `revoked ${id}` });
  });
  routes.post('/api/tasks/:id/retry', async (c) => {
    const id = c.req.param('id');
    const sink = await app.resultSink().catch(() => null);
    const meta = sink ? await sink.get(id).catch(() => null) : null;
    if (meta && typeof meta.name === 'string' && Array.isArray(meta.args)) {
      const result = await app.sendTask(meta.name, meta.args, meta.kwargs ?? {}, {
        ...(typeof meta.queue === 'string' ? { queue: meta.queue } : {}),
      });
      return c.json({ ok: `sent ${meta.name} again`, id: result.id, from: 'result meta' });
    }
    for (const queue of queueNames) {
      const dead = await transport.deadLetters.list(queue, { limit: 10_000 }).catch(() => []);
      const hit = dead.find((d) => d.message?.headers.id === id);
      if (hit) {
        await transport.deadLetters.replay(queue, { ids: [hit.id] });
        return c.json({ ok: `replayed from the dead letters of ${queue}`, id, from: 'dead letters' });
      }
    }
    return c.json(
      {
        error:
          'the original arguments are unknown: run the workers with resultExtended (result_extended) so the result keeps them, or the message must be in a dead-letter queue',
      },
      409,
    );
  });
  routes.post('/api/queues/:name/purge', async (c) => {
    const name = c.req.param('name');
    const body = (await c.req.json().catch(() => ({}))) as { confirm?: unknown };
    if (body.confirm !== name) return c.json({ error: `to purge, confirm with {"confirm": "${name}"}` }, 400);
    const count = await transport.purge(name);
    await sampleQueues();
    broadcast('stats', stats());
    return c.json({ ok: `purged ${count} message${count === 1 ? '' : 's'} from ${name}`, count });
  });
  routes.onError((err, c) => c.json({ error: err.message }, 500));

  let close: () => void = () => {};
  const closing = new Promise<void>((resolve) => {
    close = resolve;
  });
  let server: ServerType;
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: routes.fetch, port: options.port ?? 5555, hostname: host }, () => resolve(s));
      s.once('error', reject);
    });
  } catch (err) {
    // The port is taken (or not ours to bind): leave nothing running behind the error.
    for (const t of [flush, sampler, discovery]) clearInterval(t);
    if (soon) clearTimeout(soon);
    await receiver.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    state,
    async close() {
      for (const t of [flush, sampler, discovery]) clearInterval(t);
      if (soon) clearTimeout(soon);
      close();
      await receiver.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
