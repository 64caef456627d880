import type { ResultSink } from '../sink.js';
import { MemoryResultSink } from './sink.js';

export { MemoryResultSink } from './sink.js';

/**
 * Creates a memory:// result sink: results kept in this process (`shared` is false).
 *
 * Naming and sharing work as for the memory transport: the URL host names the store, every sink of
 * that name in this process shares it (so a worker app and a separately constructed client app on
 * `memory://` see the same results), and the store lives while at least one of its sinks is open.
 * Expired results go lazily on read and by an unref'd sweeper once a second.
 *
 * @example
 * const sink = createResultSink(new URL('memory://'), {});
 * await sink.store(meta, { expiresMs: 86_400_000 });
 * await sink.get(meta.task_id); // a copy of meta
 */
export function createResultSink(url: URL, _options: { options?: Record<string, unknown> }): ResultSink {
  return new MemoryResultSink(url.host);
}
