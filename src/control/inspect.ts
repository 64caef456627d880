import type { TargetOptions } from './options.js';

export type InspectOptions = TargetOptions;

/** A task as `inspect active` / `reserved` reports it (Celery's `Request.info()`). */
export interface TaskInfoReply {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  type: string;
  hostname: string;
  time_start: number | null;
  acknowledged: boolean;
  delivery_info: { exchange: string; routing_key: string; priority: number; redelivered: boolean | null };
  worker_pid: number | null;
}

/** An entry of `inspect scheduled`. */
export interface ScheduledReply {
  eta: string | null;
  priority: number;
  request: TaskInfoReply;
}

type Call = <T>(method: string, args: Record<string, unknown>) => Promise<Record<string, T>>;

/**
 * Celery's `app.control.inspect()`: each method broadcasts one inspection command and resolves
 * with the replies keyed by node name (`{}` when no node answered in time).
 *
 * @example
 * const active = await app.control.inspect({ destination: 'celeriac@web1' }).active();
 * for (const [node, tasks] of Object.entries(active)) console.log(node, tasks.length);
 */
export class Inspect {
  readonly #call: Call;

  /** @internal use `app.control.inspect()`. */
  constructor(call: Call) {
    this.#call = call;
  }

  ping(): Promise<Record<string, { ok: string }>> {
    return this.#call('ping', {});
  }

  /** Tasks running now. */
  active(options: { safe?: boolean } = {}): Promise<Record<string, TaskInfoReply[]>> {
    return this.#call('active', { safe: options.safe ?? null });
  }

  /** Tasks received and not started yet. */
  reserved(): Promise<Record<string, TaskInfoReply[]>> {
    return this.#call('reserved', {});
  }

  /** eta/countdown tasks held until due. */
  scheduled(): Promise<Record<string, ScheduledReply[]>> {
    return this.#call('scheduled', {});
  }

  /** Registered task names (`tasks.add [rate_limit=10/s]`). */
  registered(...taskinfoitems: string[]): Promise<Record<string, string[]>> {
    return this.#call('registered', { taskinfoitems: taskinfoitems.length ? taskinfoitems : null });
  }

  /** Counters, pool and broker information. */
  stats(): Promise<Record<string, Record<string, unknown>>> {
    return this.#call('stats', {});
  }

  /** Where each task id is: `{ id: [state, info] }` with state `active`, `reserved`, `scheduled`. */
  queryTask(
    ...ids: Array<string | string[]>
  ): Promise<Record<string, Record<string, [string, TaskInfoReply]>>> {
    return this.#call('query_task', { ids: ids.flat() });
  }

  /** Ids the node knows as revoked. */
  revoked(): Promise<Record<string, string[]>> {
    return this.#call('revoked', {});
  }

  /** Queues each node consumes. */
  activeQueues(): Promise<Record<string, Array<Record<string, unknown>>>> {
    return this.#call('active_queues', {});
  }

  /** Any inspection command by name. */
  call<T = unknown>(method: string, args: Record<string, unknown> = {}): Promise<Record<string, T>> {
    return this.#call(method, args);
  }
}
