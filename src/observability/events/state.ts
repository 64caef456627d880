import type { CeleryEvent } from './types.js';

/** Task states as monitoring shows them (Celery's, plus REJECTED for dead-lettered messages). */
export type MonitoredState =
  | 'PENDING'
  | 'RECEIVED'
  | 'STARTED'
  | 'SUCCESS'
  | 'FAILURE'
  | 'RETRY'
  | 'REVOKED'
  | 'REJECTED';

const STATE_OF: Readonly<Record<string, MonitoredState>> = {
  'task-sent': 'PENDING',
  'task-received': 'RECEIVED',
  'task-started': 'STARTED',
  'task-succeeded': 'SUCCESS',
  'task-failed': 'FAILURE',
  'task-retried': 'RETRY',
  'task-revoked': 'REVOKED',
  'task-rejected': 'REJECTED',
};

/** Rank of a state, so a late event cannot move a finished task back (Celery's state precedence). */
const RANK: Readonly<Record<MonitoredState, number>> = {
  PENDING: 0,
  RECEIVED: 1,
  STARTED: 2,
  RETRY: 3,
  SUCCESS: 4,
  FAILURE: 4,
  REVOKED: 4,
  REJECTED: 4,
};

/** A task as the events show it. Times are epoch seconds. */
export interface TaskView {
  uuid: string;
  name: string | null;
  state: MonitoredState;
  args: string | null;
  kwargs: string | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  retries: number;
  worker: string | null;
  queue: string | null;
  root_id: string | null;
  parent_id: string | null;
  eta: string | null;
  expires: string | null;
  sent: number | null;
  received: number | null;
  started: number | null;
  /** When it reached a ready state (SUCCESS, FAILURE, REVOKED, REJECTED). */
  finished: number | null;
  /** Seconds, from task-succeeded. */
  runtime: number | null;
  /** Every event of the task, in arrival order: type, time and sender. */
  timeline: Array<{ type: string; timestamp: number; hostname: string }>;
}

/** A worker as its events show it. */
export interface WorkerView {
  hostname: string;
  online: boolean;
  freq: number;
  active: number;
  processed: number;
  loadavg: number[];
  sw_ident: string | null;
  sw_ver: string | null;
  pid: number | null;
  /** Epoch seconds of its last event. */
  lastHeartbeat: number;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * The cluster as monitoring events show it (Celery's `events.State`): workers and the most recent
 * tasks, bounded (oldest tasks dropped first). Feed it every event; read `workers`, `tasks`.
 *
 * @example
 * const state = new ClusterState();
 * await EventReceiver.start(fanout, (e) => state.apply(e));
 */
export class ClusterState {
  readonly workers = new Map<string, WorkerView>();
  readonly tasks = new Map<string, TaskView>();
  readonly #maxTasks: number;

  constructor(options: { maxTasks?: number } = {}) {
    this.#maxTasks = options.maxTasks ?? 10_000;
  }

  /** Applies one event; returns the task or worker it changed (null for events it does not track). */
  apply(event: CeleryEvent): TaskView | WorkerView | null {
    if (event.type.startsWith('worker-')) return this.#worker(event);
    if (event.type.startsWith('task-')) return this.#task(event);
    return null;
  }

  /** Seconds after which a worker without a heartbeat counts as offline (Celery: freq × 1.5 … we allow 2 missed). */
  isAlive(worker: WorkerView, now = Date.now() / 1000): boolean {
    return worker.online && now - worker.lastHeartbeat < Math.max(worker.freq, 1) * 2.5;
  }

  #worker(e: CeleryEvent): WorkerView {
    const prev = this.workers.get(e.hostname);
    const loadavg = Array.isArray(e.loadavg)
      ? e.loadavg.filter((n): n is number => typeof n === 'number')
      : [];
    const view: WorkerView = {
      hostname: e.hostname,
      online: e.type !== 'worker-offline',
      freq: num(e.freq) ?? prev?.freq ?? 2,
      active: num(e.active) ?? prev?.active ?? 0,
      processed: num(e.processed) ?? prev?.processed ?? 0,
      loadavg: loadavg.length ? loadavg : (prev?.loadavg ?? []),
      sw_ident: str(e.sw_ident) ?? prev?.sw_ident ?? null,
      sw_ver: str(e.sw_ver) ?? prev?.sw_ver ?? null,
      pid: num(e.pid) ?? prev?.pid ?? null,
      lastHeartbeat: e.timestamp,
    };
    this.workers.set(e.hostname, view);
    return view;
  }

  #task(e: CeleryEvent): TaskView | null {
    const uuid = str(e.uuid);
    if (!uuid) return null;
    let t = this.tasks.get(uuid);
    if (!t) {
      t = {
        uuid,
        name: null,
        state: 'PENDING',
        args: null,
        kwargs: null,
        result: null,
        exception: null,
        traceback: null,
        retries: 0,
        worker: null,
        queue: null,
        root_id: null,
        parent_id: null,
        eta: null,
        expires: null,
        sent: null,
        received: null,
        started: null,
        finished: null,
        runtime: null,
        timeline: [],
      };
      this.tasks.set(uuid, t);
      if (this.tasks.size > this.#maxTasks) {
        const oldest = this.tasks.keys().next().value;
        if (oldest !== undefined) this.tasks.delete(oldest);
      }
    }
    t.timeline.push({ type: e.type, timestamp: e.timestamp, hostname: e.hostname });
    const state = STATE_OF[e.type];
    // A retried task comes back as task-received: a new round, so RETRY → RECEIVED is allowed.
    const again = t.state === 'RETRY' && state !== undefined && RANK[state] < RANK.RETRY;
    if (state && (RANK[state] >= RANK[t.state] || again)) t.state = state;
    t.name = str(e.name) ?? t.name;
    t.args = str(e.args) ?? t.args;
    t.kwargs = str(e.kwargs) ?? t.kwargs;
    t.root_id = str(e.root_id) ?? t.root_id;
    t.parent_id = str(e.parent_id) ?? t.parent_id;
    t.eta = str(e.eta) ?? t.eta;
    t.expires = str(e.expires) ?? t.expires;
    t.queue = str(e.queue) ?? t.queue;
    if (typeof e.retries === 'number') t.retries = Math.max(t.retries, e.retries);
    switch (e.type) {
      case 'task-sent':
        t.sent = e.timestamp;
        break;
      case 'task-received':
        t.received = e.timestamp;
        t.worker = e.hostname;
        break;
      case 'task-started':
        t.started = e.timestamp;
        t.worker = e.hostname;
        break;
      case 'task-succeeded':
        t.result = str(e.result);
        t.runtime = num(e.runtime);
        t.finished = e.timestamp;
        break;
      case 'task-failed':
      case 'task-retried':
        t.exception = str(e.exception);
        t.traceback = str(e.traceback);
        if (e.type === 'task-failed') t.finished = e.timestamp;
        break;
      case 'task-revoked':
      case 'task-rejected':
        t.finished = e.timestamp;
        break;
    }
    return t;
  }
}
