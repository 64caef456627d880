import type { Celeriac } from '../app.js';
import type { HealthReport } from '../health.js';
import { aggregate } from '../health.js';
import type { Logger } from '../logging.js';
import type { Worker, WorkerOptions } from '../worker/worker.js';
import type { AutoscaleOptions } from './autoscale.js';
import { Autoscaler } from './autoscale.js';
import { startHealthServer } from './http.js';
import type { Component } from './lifecycle.js';
import { Lifecycle } from './lifecycle.js';
import type { LoopLagOptions } from './loop-lag.js';
import { LoopLag } from './loop-lag.js';
import type { ProgressOptions } from './progress.js';
import { ProgressWatch } from './progress.js';

/** Options of a `Controller`. */
export interface ControllerOptions {
  /** Options of the worker the controller runs. */
  worker?: WorkerOptions;
  /** Serve `/livez` and `/readyz` on this port (0: any free port). No HTTP server when unset. */
  healthPort?: number;
  /** Interface for the health server. Default 0.0.0.0 (probes come from outside the container). */
  healthHost?: string;
  /** How long a graceful stop lets in-flight tasks finish. Default 30 s. */
  shutdownTimeoutMs?: number;
  /** How long closing connections may take after the worker stopped. Default 5 s. */
  closeTimeoutMs?: number;
  /** Celery's `--autoscale MAX,MIN`; the worker starts at MIN. */
  autoscale?: Omit<AutoscaleOptions, 'log'>;
  loopLag?: LoopLagOptions;
  progress?: ProgressOptions;
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The lifecycle of one worker process (DESIGN.md §3, Controller). Starts, in order: the broker and
 * result-store connections, the health server, the event-loop monitor, the worker (its pools, then
 * its consumer), the consumption-progress watch and the autoscaler; stops them in reverse. The
 * health server starts before the worker and stops after it, so probes can watch the drain:
 * `/readyz` says 503 "stopping" while `/livez` stays 200.
 *
 * @example
 * const controller = new Controller(app, { worker: { concurrency: 10 }, healthPort: 8080 });
 * await controller.start();
 * process.exitCode = await controller.untilSignal(); // SIGTERM: graceful; a second one: cold
 */
export class Controller {
  readonly app: Celeriac;
  readonly worker: Worker;
  readonly shutdownTimeoutMs: number;
  readonly autoscaler: Autoscaler | null = null;
  readonly #options: ControllerOptions;
  readonly #log: Logger;
  readonly #lag: LoopLag;
  readonly #progress: ProgressWatch;
  readonly #lifecycle: Lifecycle;
  #state: State = 'new';
  #healthPort: number | null = null;
  #stopping: Promise<void> | null = null;

  constructor(app: Celeriac, options: ControllerOptions = {}) {
    this.app = app;
    this.#options = options;
    this.#log = app.log.child({ component: 'controller' });
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
    const scale = options.autoscale;
    this.worker = app.worker({
      ...options.worker,
      ...(scale ? { concurrency: scale.min } : {}),
      shutdownTimeout: this.shutdownTimeoutMs,
    });
    const worker = this.worker;
    const depth = async (queue: string) => (await app.transport()).depth(queue);
    this.#lag = new LoopLag(options.loopLag);
    this.#progress = new ProgressWatch(
      {
        get queues() {
          return worker.queues;
        },
        get active() {
          return worker.active;
        },
        get reserved() {
          return worker.reserved;
        },
        stats: worker.stats,
        credit: () => Number(worker.statsInfo().prefetch_count),
      },
      depth,
      options.progress,
    );
    if (scale) this.autoscaler = new Autoscaler(worker, depth, { ...scale, log: this.#log });
    this.#lifecycle = new Lifecycle(this.#components(), (name, err) =>
      this.#log.error({ err, component: name }, 'component did not stop cleanly'),
    );
  }

  /** The port the health server listens on (useful with `healthPort: 0`), or null. */
  get healthPort(): number | null {
    return this.#healthPort;
  }

  get state(): State {
    return this.#state;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`start() called on a controller that is ${this.#state}`);
    this.#state = 'starting';
    try {
      await this.#lifecycle.start();
    } catch (err) {
      this.#state = 'stopped';
      throw err;
    }
    this.#state = 'running';
  }

  /**
   * Graceful stop: the worker stops consuming, requeues what it reserved and has not started, and
   * lets running tasks finish within `shutdownTimeoutMs` (then: threads/process runs are killed and
   * requeued, event-loop runs are left unacked and redelivered); then connections close, which
   * gives every unsettled delivery back to the broker. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#state = 'stopping';
      const closeMs = this.#options.closeTimeoutMs ?? 5000;
      await this.#lifecycle.stop(this.shutdownTimeoutMs + closeMs);
      this.#state = 'stopped';
    })();
    return this.#stopping;
  }

  /**
   * Cold stop (a second signal): does not wait for running tasks. Closing the connections gives
   * every unsettled delivery (reserved or running) back to the broker, so nothing is lost; the
   * running ones run again elsewhere.
   */
  async coldStop(): Promise<void> {
    this.#state = 'stopping';
    await withTimeout(this.app.close(), this.#options.closeTimeoutMs ?? 5000).catch((err: unknown) =>
      this.#log.error({ err }, 'cold shutdown: connections did not close in time'),
    );
    this.#state = 'stopped';
  }

  /**
   * Waits for SIGTERM or SIGINT, then stops gracefully; a second signal during that stop switches
   * to a cold stop. Resolves with the exit code: 0 after a graceful stop, 1 after a cold one.
   */
  untilSignal(
    onSignal: (signal: NodeJS.Signals, mode: 'graceful' | 'cold') => void = () => undefined,
  ): Promise<number> {
    return new Promise<number>((resolve) => {
      // Nothing else may hold the process open (memory:// has no socket): this does, until a signal.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      let signalled = false;
      const handler = (signal: NodeJS.Signals) => {
        if (!signalled) {
          signalled = true;
          onSignal(signal, 'graceful');
          void this.stop().then(() => finish(0));
        } else {
          onSignal(signal, 'cold');
          void this.coldStop().then(() => finish(1));
        }
      };
      const finish = (code: number) => {
        clearInterval(keepAlive);
        process.off('SIGTERM', handler);
        process.off('SIGINT', handler);
        resolve(code);
      };
      process.on('SIGTERM', handler);
      process.on('SIGINT', handler);
    });
  }

  /** `/livez`: the process is alive and its event loop answers in time. */
  liveness(): HealthReport {
    return aggregate({ eventLoop: this.#lag.report() });
  }

  /** `/readyz`: the app's components (broker, results, worker), the event loop and consumption. */
  async readiness(): Promise<HealthReport> {
    if (this.#state !== 'running')
      return { status: 'unhealthy', reason: this.#state === 'starting' ? 'starting' : this.#state };
    const app = await this.app.health();
    return aggregate({
      ...app.components,
      eventLoop: this.#lag.report(),
      consumption: this.#progress.report(),
    });
  }

  #components(): Component[] {
    const app = this.app;
    const components: Component[] = [
      {
        name: 'connections',
        start: async () => {
          await app.transport();
          await app.resultSink();
        },
        // The app closes its worker (already stopped by now), then the result store and broker.
        stop: async (ms) => withTimeout(app.close(), Math.max(ms, 1000)),
      },
    ];
    if (this.#options.healthPort !== undefined) {
      let server: { port: number; close(): Promise<void> } | null = null;
      components.push({
        name: 'http',
        start: async () => {
          server = await startHealthServer(this, {
            port: this.#options.healthPort as number,
            ...(this.#options.healthHost ? { host: this.#options.healthHost } : {}),
          });
          this.#healthPort = server.port;
          this.#log.info({ port: server.port }, 'health endpoint: /livez, /readyz');
        },
        stop: async () => server?.close(),
      });
    }
    components.push(
      { name: 'event-loop', start: async () => this.#lag.start(), stop: async () => this.#lag.stop() },
      {
        name: 'worker',
        start: () => this.worker.start(),
        stop: (ms) => this.worker.stop({ timeout: Math.min(ms, this.shutdownTimeoutMs) }),
      },
      {
        name: 'progress',
        start: async () => this.#progress.start(),
        stop: async () => this.#progress.stop(),
      },
    );
    const scaler = this.autoscaler;
    if (scaler)
      components.push({
        name: 'autoscale',
        start: async () => scaler.start(),
        stop: async () => scaler.stop(),
      });
    return components;
  }
}

async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
