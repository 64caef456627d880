import { ClosedError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import { READY_STATES, type ResultMeta } from '../meta.js';
import type { ResultSink } from '../sink.js';
import { acquireStore, releaseStore } from './registry.js';
import type { MemoryResultStore } from './store.js';

/**
 * One connection to an in-process result store (see `index.ts` for naming and sharing). `close()`
 * rejects this sink's pending waits with ClosedError and drops its watchers.
 *
 * @example
 * const sink = new MemoryResultSink('');
 * const done = sink.wait(id, {});
 * await sink.store({ ...meta, status: 'SUCCESS' }, { expiresMs: 86_400_000 });
 * await done;
 */
export class MemoryResultSink implements ResultSink {
  readonly kind = 'memory';
  readonly shared = false;
  private backing: MemoryResultStore | undefined;
  private closed = false;
  /** Cleanups for this sink's pending waits and watchers, run on close. */
  private readonly pending = new Set<(error: ClosedError) => void>();

  /** `name` is the URL host; nothing is acquired until first use. */
  constructor(private readonly name: string) {}

  async connect(): Promise<void> {
    this.open();
  }

  async store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    this.open().store(meta, options.expiresMs);
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    return this.open().get(taskId);
  }

  async wait(taskId: string, options: { signal?: AbortSignal }): Promise<ResultMeta> {
    const store = this.open();
    const { signal } = options;
    signal?.throwIfAborted();
    const current = store.get(taskId);
    if (current && READY_STATES.has(current.status)) return current;
    return new Promise<ResultMeta>((resolve, reject) => {
      const finish = (): void => {
        unlisten();
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(onClose);
      };
      const unlisten = store.listen(taskId, (meta) => {
        if (!READY_STATES.has(meta.status)) return;
        finish();
        resolve(meta);
      });
      const onAbort = (): void => {
        finish();
        reject(signal?.reason);
      };
      const onClose = (error: ClosedError): void => {
        finish();
        reject(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.add(onClose);
    });
  }

  async watch(taskId: string, listener: (meta: ResultMeta) => void): Promise<() => Promise<void>> {
    const unlisten = this.open().listen(taskId, listener);
    const stop = (): void => {
      unlisten();
      this.pending.delete(stop);
    };
    this.pending.add(stop);
    return async () => stop();
  }

  async forget(taskId: string): Promise<void> {
    this.open().forget(taskId);
  }

  async incr(key: string, by: number, options: { expiresMs: number }): Promise<number> {
    return this.open().incr(key, by, options.expiresMs);
  }

  health(): HealthReport {
    return this.closed ? { status: 'unhealthy', reason: 'closed' } : { status: 'healthy' };
  }

  /** Idempotent. The last sink of a name to close frees its store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new ClosedError(this.what());
    for (const cleanup of [...this.pending]) cleanup(error);
    this.pending.clear();
    if (this.backing) releaseStore(this.name, this.backing);
    this.backing = undefined;
  }

  private open(): MemoryResultStore {
    if (this.closed) throw new ClosedError(this.what());
    this.backing ??= acquireStore(this.name);
    return this.backing;
  }

  private what(): string {
    return `memory result sink 'memory://${this.name}'`;
  }
}
