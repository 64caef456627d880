import type { Transport, TransportOptions } from '../transport.js';
import { MemoryTransport } from './transport.js';

export { MemoryTransport } from './transport.js';

/**
 * Creates a memory:// transport: an in-process broker, for tests, `celeriac demo` and single-process
 * apps (`shared` is false: nothing crosses the process boundary).
 *
 * Naming and sharing: the URL host names the broker. Every transport in this process with the same
 * name talks to the same broker, so an app that publishes and a separately constructed worker app
 * both on `memory://` see each other's messages; `memory://billing` is a different, isolated broker.
 * The path, query and credentials are ignored. A broker lives while at least one of its transports is
 * connected (reference-counted): when the last one closes, its messages, delayed messages, dead
 * letters and subscriptions are dropped.
 *
 * @example
 * const publisher = createTransport(new URL('memory://'), {});
 * const worker = createTransport(new URL('memory://'), {}); // same broker as `publisher`
 * await worker.consume(['celery'], (d) => void worker.ack(d), { prefetch: 10 });
 * await publisher.publish([{ queue: 'celery', message }]);
 */
export function createTransport(url: URL, options: TransportOptions): Transport {
  return new MemoryTransport(url.host, options);
}
