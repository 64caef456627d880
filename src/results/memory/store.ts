import type { ResultMeta } from '../meta.js';

interface Expiring<T> {
  value: T;
  /** Epoch ms; +Infinity for no expiry. */
  expiresAt: number;
}

type Listener = (meta: ResultMeta) => void;

/** How often the sweeper drops expired entries that nobody reads (reads expire lazily anyway). */
const SWEEP_INTERVAL_MS = 1000;

/** `expiresMs` ≤ 0 or not finite means "never expires" (as Celery's `result_expires = None`). */
function expiryOf(expiresMs: number, now: number): number {
  return Number.isFinite(expiresMs) && expiresMs > 0 ? now + expiresMs : Number.POSITIVE_INFINITY;
}

/**
 * The state of one in-process result store: results and counters with expiry, and per-task listeners
 * notified synchronously on every store. Shared by every memory sink of the same name (see
 * `registry.ts`). Values are copied in and out (structuredClone), as a networked store would.
 *
 * @example
 * const store = new MemoryResultStore();
 * const stop = store.listen('id-1', (meta) => console.log(meta.status));
 * store.store(meta, 86_400_000);
 * stop();
 */
export class MemoryResultStore {
  private readonly results = new Map<string, Expiring<ResultMeta>>();
  private readonly counters = new Map<string, Expiring<number>>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private sweeper: NodeJS.Timeout | undefined;

  store(meta: ResultMeta, expiresMs: number): void {
    const expiresAt = expiryOf(expiresMs, Date.now());
    this.results.set(meta.task_id, { value: structuredClone(meta), expiresAt });
    if (expiresAt !== Number.POSITIVE_INFINITY) this.startSweeper();
    const listeners = this.listeners.get(meta.task_id);
    if (!listeners) return;
    // A snapshot: a listener that (un)subscribes while being called must not change this round.
    for (const listener of [...listeners]) {
      try {
        listener(structuredClone(meta));
      } catch (error) {
        process.emitWarning(
          `memory result sink: a listener for task ${meta.task_id} threw: ${String(error)}`,
        );
      }
    }
  }

  get(taskId: string): ResultMeta | null {
    const entry = this.live(this.results, taskId);
    return entry ? structuredClone(entry.value) : null;
  }

  forget(taskId: string): void {
    this.results.delete(taskId);
  }

  /** Calls `listener` on every store for the task; returns the unsubscribe function. */
  listen(taskId: string, listener: Listener): () => void {
    let set = this.listeners.get(taskId);
    if (!set) {
      set = new Set();
      this.listeners.set(taskId, set);
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(taskId);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(taskId);
    };
  }

  /** Adds `by` (an expired counter starts again from 0), sets the expiry, returns the new value. */
  incr(key: string, by: number, expiresMs: number): number {
    const now = Date.now();
    const value = (this.live(this.counters, key)?.value ?? 0) + by;
    const expiresAt = expiryOf(expiresMs, now);
    this.counters.set(key, { value, expiresAt });
    if (expiresAt !== Number.POSITIVE_INFINITY) this.startSweeper();
    return value;
  }

  /** Drops everything and stops the sweeper (the last sink of this name closed). */
  destroy(): void {
    this.stopSweeper();
    this.results.clear();
    this.counters.clear();
    this.listeners.clear();
  }

  /** Drops expired entries nobody has read (reads expire them lazily). */
  private sweep(): void {
    const now = Date.now();
    for (const map of [this.results, this.counters] as Map<string, Expiring<unknown>>[]) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) map.delete(key);
    }
    if (this.results.size === 0 && this.counters.size === 0) this.stopSweeper();
  }

  private live<T>(map: Map<string, Expiring<T>>, key: string): Expiring<T> | undefined {
    const entry = map.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
