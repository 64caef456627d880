import type { Transport } from '../brokers/transport.js';
import type { HealthReport } from '../health.js';
import type { ResultMeta } from './meta.js';

/**
 * The result port. Every result adapter (memory, redis, rpc, …) implements it and passes the sink
 * contract suite in `test/contract/sink.contract.ts`.
 */
export interface ResultSink {
  readonly kind: string;
  /** True when results stored here are visible to other processes (false for memory://). */
  readonly shared: boolean;
  connect(): Promise<void>;
  /** Stores a state for a task (overwriting the previous one) and notifies waiters. `expiresMs` ≤ 0: never expires. */
  store(meta: ResultMeta, options: { expiresMs: number }): Promise<void>;
  /** The latest stored meta, or null (PENDING: never stored, expired, or forgotten). */
  get(taskId: string): Promise<ResultMeta | null>;
  /**
   * Resolves with the meta as soon as a ready state (SUCCESS, FAILURE, REVOKED) is stored, or at once
   * if one is stored already. Waits on a notification (subscribe, not poll). Rejects with the
   * signal's reason when `signal` aborts.
   */
  wait(taskId: string, options: { signal?: AbortSignal }): Promise<ResultMeta>;
  /** Calls `listener` on every state stored for the task from now on; returns an unsubscribe function. */
  watch(taskId: string, listener: (meta: ResultMeta) => void): Promise<() => Promise<void>>;
  /** Deletes the stored result. */
  forget(taskId: string): Promise<void>;
  /** Atomic counter (for chords): adds `by` to `key`, sets its expiry, returns the new value. */
  incr(key: string, by: number, options: { expiresMs: number }): Promise<number>;
  health(): HealthReport;
  /** Closes connections; pending `wait()` calls reject with ClosedError. */
  close(): Promise<void>;
}

/** What a result adapter is created with besides its URL. */
export interface ResultSinkOptions {
  /** The app's `resultOptions`. */
  options?: Record<string, unknown>;
  /**
   * The app's default broker transport (connected on first call), for an adapter that uses the
   * broker itself: rpc:// borrows an AMQP transport's connection and learns from it where each
   * task it delivered wants its result (`brokers/amqp/replies.ts`). Other adapters ignore it.
   */
  broker?: () => Promise<Transport>;
}

export type ResultSinkFactory = (url: URL, options: ResultSinkOptions) => ResultSink;
