import type { ResolvedConfig } from './config.js';
import type { EagerResult } from './eager.js';
import type { Logger } from './logging.js';
import type { Embed } from './messages/types.js';
import type { AsyncResult } from './result.js';
import type { ResultSink } from './results/sink.js';
import type { Task } from './task.js';

/**
 * What the app hands to tasks, signatures, results and workers: the seams between them and the
 * app, so none of them imports the app (dependencies point one way, STYLE.md 3).
 * @internal
 */
export interface AppCore {
  readonly config: ResolvedConfig;
  readonly log: Logger;
  /** Publishes one task message; resolves when the broker has it. */
  send(request: SendRequest): Promise<AsyncResult<unknown>>;
  /** Publishes several task messages as one batch (atomic per broker); resolves when the broker has them. */
  sendMany(requests: readonly SendRequest[]): Promise<AsyncResult<unknown>[]>;
  /** The result sink, connected, or null when none is configured. */
  sink(): Promise<ResultSink | null>;
  /** Registered tasks by name. */
  readonly tasks: ReadonlyMap<string, Task<never[], unknown>>;
  /** Validates args against a task's `argsSchema` (throws PayloadError). */
  validateArgs(task: Task<never[], unknown>, args: unknown[], where: 'delay' | 'worker'): Promise<unknown[]>;
  /** Runs a task in-process (task.apply()). */
  applyEager(
    task: Task<never[], unknown>,
    args: unknown[],
    kwargs: Record<string, unknown>,
  ): Promise<EagerResult<unknown>>;
}

/** One task message to publish, with every option resolved (times as epoch ms). */
export interface SendRequest {
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  taskId?: string | undefined;
  eta: number | null;
  expires: number | null;
  /** API priority 0–9, 9 most urgent; undefined: the transport's default (Celery's wire default). */
  priority?: number | undefined;
  queue?: string | undefined;
  headers?: Record<string, unknown> | undefined;
  ignoreResult: boolean;
  shadow: string | null;
  /** Celery's [hard, soft] in seconds. */
  timelimit: [number | null, number | null];
  embed?: Partial<Embed>;
  retries?: number;
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  /** `reply_to` of the message; default the app's own (`threadOid()`). A retry keeps the original's, as Celery's. */
  replyTo?: string | undefined;
}
