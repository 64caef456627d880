import { ConfigError } from '../errors.js';
import type { Transport, TransportOptions } from './transport.js';
import { parseUrl } from './url.js';

/**
 * Maps a broker URL scheme to its adapter. Adapters are imported lazily so an app that uses only
 * memory:// never loads a broker client library.
 */
const ADAPTERS: Record<
  string,
  () => Promise<{ createTransport: (url: URL, options: TransportOptions) => Transport }>
> = {
  memory: () => import('./memory/index.js'),
  redis: () => import('./redis/index.js'),
  rediss: () => import('./redis/index.js'),
  'redis+sentinel': () => import('./redis/index.js'),
  'redis+cluster': () => import('./redis/index.js'),
  amqp: () => import('./amqp/index.js'),
  amqps: () => import('./amqp/index.js'),
};

/** The schemes `broker` accepts. */
export const BROKER_SCHEMES = Object.keys(ADAPTERS);

/**
 * @internal Set on globalThis by the threads/process pool bootstrap (src/worker/pools/child-runtime.ts)
 * before it imports the app in a thread or child: the app's transport then forwards to the main
 * worker's, whatever URL the app names. A registered symbol, so every copy of this module in the
 * thread (src and dist) sees it.
 */
export const TRANSPORT_OVERRIDE = Symbol.for('celeriac.pool.transport');

/** Creates (without connecting) the transport for a broker URL. */
export async function createTransport(url: string, options: TransportOptions = {}): Promise<Transport> {
  const override = (globalThis as Record<symbol, unknown>)[TRANSPORT_OVERRIDE];
  if (typeof override === 'function') return (override as () => Transport)();
  const parsed = parseUrl(url, 'broker');
  const scheme = parsed.protocol.replace(/:$/, '');
  const load = ADAPTERS[scheme];
  if (!load) {
    throw new ConfigError(
      'broker',
      `unsupported scheme '${scheme}://', expected one of ${BROKER_SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  const mod = await load();
  return mod.createTransport(parsed, options);
}

export { parseUrl, redactUrl } from './url.js';
