import type { Transport } from '../brokers/transport.js';
import type { HealthReport } from '../health.js';
import type { Logger } from '../logging.js';
import type { TaskState } from '../results/meta.js';
import type { ResultSink } from '../results/sink.js';
import type { Task } from '../task.js';
import type { Outcome } from './execute.js';

/** Where a task runs: on the event loop, in a worker thread, or in a child process. */
export type PoolKind = 'async' | 'threads' | 'process';
export const POOL_KINDS: readonly PoolKind[] = ['async', 'threads', 'process'];

/** One task run, as a pool receives it. Everything here can cross a thread or process boundary but the callbacks. */
export interface PoolRun {
  task: Task<never[], unknown>;
  id: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  headers: Record<string, unknown>;
  retries: number;
  queue: string;
  hostname: string;
  event: string | null;
  limits: { hardMs: number | null; softMs: number | null };
  /** Aborted from outside: revoke with terminate, or the shutdown deadline. Pools that can, kill the run. */
  signal: AbortSignal;
  /** The controller behind `signal`, for pools that run the handler in this thread (the async pool). */
  controller?: AbortController;
  /** Stores a progress state through the main worker's result sink. */
  updateState: (state: TaskState, meta: unknown) => Promise<void>;
}

/**
 * A pool runs task handlers with its own concurrency budget (`size`). The worker keeps one internal
 * queue per pool, so I/O tasks on the loop and CPU tasks in threads never wait for each other.
 * `run()` never throws: every ending is an Outcome (a killed run is a failure with TimeLimitExceeded
 * or the abort reason).
 */
export interface Pool {
  readonly kind: PoolKind;
  /** Runs at once. */
  readonly size: number;
  start(): Promise<void>;
  /** The outcome, at once when the pool has it at once (a synchronous handler on the event loop). */
  run(run: PoolRun): Outcome | Promise<Outcome>;
  /** Grows or shrinks the budget (pool_grow / pool_shrink, autoscale). Running tasks are not stopped. */
  resize(size: number): void;
  /** Stops the pool; with `force`, running tasks are killed where the pool can. */
  stop(options?: { force?: boolean }): Promise<void>;
  health(): HealthReport;
}

/** What the worker passes to a pool factory. */
export interface PoolOptions {
  size: number;
  log: Logger;
  /**
   * The module that exports the app (`FILE` of `celeriac worker --app FILE`, or `import.meta.url`),
   * loaded again in each thread or child. Required by the threads and process pools.
   */
  appModule?: string | undefined;
  /** Replace a thread or child after this many tasks. */
  maxTasksPerChild?: number | undefined;
  /** Replace a thread or child after a task leaves it above this resident memory (bytes). */
  maxMemoryPerChild?: number | undefined;
  /**
   * The main worker's broker and result sink: tasks in threads and children publish, retry, store
   * and read results through them (the app there gets proxies that forward here).
   */
  host?: { transport(): Promise<Transport>; sink(): Promise<ResultSink | null> } | undefined;
}
