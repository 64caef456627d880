import { parseUrl } from '../brokers/url.js';
import { ConfigError } from '../errors.js';
import type { ResultSink, ResultSinkFactory, ResultSinkOptions } from './sink.js';

/** Maps a results URL scheme to its adapter, imported lazily. */
const ADAPTERS: Record<string, () => Promise<{ createResultSink: ResultSinkFactory }>> = {
  memory: () => import('./memory/index.js'),
  redis: () => import('./redis/index.js'),
  rediss: () => import('./redis/index.js'),
  'redis+sentinel': () => import('./redis/index.js'),
  'redis+cluster': () => import('./redis/index.js'),
  rpc: () => import('./rpc/index.js'),
};

/** The schemes `results` accepts. */
export const RESULT_SCHEMES = Object.keys(ADAPTERS);

/**
 * @internal Set on globalThis by the threads/process pool bootstrap (src/worker/pools/child-runtime.ts)
 * before it imports the app in a thread or child: the app's result sink then forwards to the main
 * worker's. A registered symbol, so every copy of this module in the thread (src and dist) sees it.
 */
export const SINK_OVERRIDE = Symbol.for('celeriac.pool.sink');

/** Creates (without connecting) the result sink for a results URL; `broker`: the app's transport (see ResultSinkOptions). */
export async function createResultSink(
  url: string,
  options: Record<string, unknown> = {},
  broker?: ResultSinkOptions['broker'],
): Promise<ResultSink> {
  const override = (globalThis as Record<symbol, unknown>)[SINK_OVERRIDE];
  if (typeof override === 'function') return (override as () => ResultSink)();
  const parsed = parseUrl(url, 'results');
  const scheme = parsed.protocol.replace(/:$/, '');
  const load = ADAPTERS[scheme];
  if (!load) {
    throw new ConfigError(
      'results',
      `unsupported scheme '${scheme}://', expected one of ${RESULT_SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  return (await load()).createResultSink(parsed, { options, ...(broker ? { broker } : {}) });
}
