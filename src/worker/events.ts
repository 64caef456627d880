import { EventEmitter } from 'node:events';
import type { TaskHeaders } from '../messages/types.js';

/**
 * What a worker reports as it runs (STYLE.md 11): a typed event map. Metrics, monitoring events and
 * logs hang off it. Times are epoch ms.
 */
export interface WorkerEventMap {
  'worker-online': { hostname: string; queues: readonly string[]; concurrency: number; at: number };
  'worker-offline': { hostname: string; at: number };
  'task-received': {
    id: string;
    name: string;
    queue: string;
    retries: number;
    eta: string | null;
    /** The message's protocol v2 headers (argsrepr, kwargsrepr, root_id, parent_id, expires…), for monitoring events. */
    headers: Readonly<TaskHeaders>;
    at: number;
  };
  'task-started': { id: string; name: string; queue: string; retries: number; at: number };
  'task-succeeded': { id: string; name: string; result: unknown; runtimeMs: number; at: number };
  'task-failed': { id: string; name: string; error: Error; runtimeMs: number; at: number };
  'task-retried': {
    id: string;
    name: string;
    error: Error | null;
    retries: number;
    countdownMs: number;
    at: number;
  };
  'task-revoked': { id: string; name: string; reason: 'expired' | 'revoked'; at: number };
  /** A message that was dead-lettered (or requeued by Reject), with the reason. */
  'task-rejected': { id: string | null; name: string | null; queue: string; reason: string; at: number };
}

/** A small typed wrapper over EventEmitter. */
export class TypedEmitter<M extends object> {
  readonly #emitter = new EventEmitter();

  on<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  off<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  once<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.once(event, listener);
    return this;
  }

  /** @internal True when someone listens to `event` (so a hot path can skip building its payload). */
  listening<K extends keyof M & string>(event: K): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }

  /** @internal */
  emit<K extends keyof M & string>(event: K, payload: M[K]): void {
    if (this.#emitter.listenerCount(event) > 0) this.#emitter.emit(event, payload);
  }
}
